using AotProxy.Http;

namespace AotProxy.Accounting;

// The account stage, for a request that went to a worker: its usage (exact, or estimated for an
// answer that ended without one) goes to the tenant's counters (UsageRecorder) and becomes the
// request's, which DataPlaneHandler's finally settles the admission and limit leases to; and the
// model's latency, time to first byte and the gateway's overhead (Http/TimingHeaders).
internal sealed class AccountingStage(UsageRecorder usage, RequestTelemetry telemetry, TimeProvider time)
{
    public void Account(ProxyRequest request)
    {
        if (request.Upstream is null)
        {
            return; // no worker took it: nothing to account
        }

        var result = request.Forward;
        if (AudioUsage.Settle(request.Endpoint, Used(request.Endpoint, request.Meter.Usage), request.Inspected) is { } used)
        {
            usage.Record(request.Caller.Tenant, used);
            request.Usage = used;
        }

        telemetry.ObserveLatency(request.Model, time.GetElapsedTime(request.Started));
        telemetry.ObserveOverhead(request.Model, request.Overhead);
        if (result.FirstByte is { } firstByte)
        {
            telemetry.ObserveTtft(request.Model, request.Caller.Class.Name, firstByte);
            request.FirstByte = firstByte;
        }
    }

    // A tokenizer endpoint's answer uses no tokens, however it ended (the relay estimates an answer
    // without `usage`; the tokenizer's never has one): exactly 0, still a request.
    private static Usage? Used(EndpointKind endpoint, Usage? reported) =>
        EndpointTraits.UsesTokens(endpoint) || reported is null ? reported : new Usage(0, 0);
}
