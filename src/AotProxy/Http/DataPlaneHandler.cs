using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Forwarding;
using AotProxy.Gateway;
using AotProxy.Identity;
using AotProxy.Inspection;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Threading;
using AotProxy.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Http;

// The data plane's one request delegate. It dispatches on method and path itself (there is no
// routing middleware) and puts the stages in order: identify -> inspect -> limit -> admit ->
// route/pace/forward -> account, then the failure as an OpenAI error, and the finally that
// releases and records exactly once. Each stage's entry point is in its own folder; what they
// share travels in one ProxyRequest (docs/ARCHITECTURE.md walks through them).
internal sealed class DataPlaneHandler(
    GatewayState state,
    IdentityStage identity,
    InspectionStage inspection,
    LimitStage limits,
    AdmissionStage admission,
    ForwardingStage forwarding,
    AccountingStage accounting,
    RecordStage record,
    TimeProvider time)
{
    // The stages over the gateway's long-lived state; GatewayHost's wiring, and a test's.
    public static DataPlaneHandler Create(
        GatewayState state, AdmissionController admissions, Router router, TenantLimits tenantLimits, UsageRecorder usage, GatewayTelemetry telemetry, LedgerWriter? ledger, TimeProvider time, ILogger logger, SharedTenantLimits? sharedLimits = null, SharedWorkerSlots? sharedSlots = null) => new(
        state,
        new IdentityStage(time, logger),
        new InspectionStage(),
        new LimitStage(tenantLimits, telemetry.Limits, sharedLimits),
        new AdmissionStage(admissions, time),
        new ForwardingStage(router, new Forwarder(time), new RetryBudget(time), Random.Shared, admissions, telemetry.Forwarding, telemetry.Pacing, time, logger, sharedSlots),
        new AccountingStage(usage, telemetry.Requests, time),
        new RecordStage(ledger, telemetry.Requests, telemetry.Errors, time),
        time);

    public Task HandleAsync(HttpContext context)
    {
        var requestId = RequestIds.Ensure(context);
        var request = context.Request;
        var isPost = HttpMethods.IsPost(request.Method);
        switch (request.Path.Value)
        {
            case "/v1/chat/completions":
                return isPost ? ProxyAsync(context, requestId, EndpointKind.ChatCompletions).AsTask() : OpenAiError.MethodNotAllowed(context);
            case "/v1/completions":
                return isPost ? ProxyAsync(context, requestId, EndpointKind.Completions).AsTask() : OpenAiError.MethodNotAllowed(context);
            case "/v1/embeddings":
                return isPost ? ProxyAsync(context, requestId, EndpointKind.Embeddings).AsTask() : OpenAiError.MethodNotAllowed(context);
            case "/v1/models":
                return HttpMethods.IsGet(request.Method) ? ModelsAsync(context, requestId) : OpenAiError.MethodNotAllowed(context);
            case "/health":
                context.Response.ContentType = "text/plain";
                return context.Response.WriteAsync("ok", context.RequestAborted);
            default:
                return OpenAiError.NotFound(context);
        }
    }

    private Task ModelsAsync(HttpContext context, string requestId)
    {
        var view = state.Current;
        var identified = identity.Identify(context, view.Config, requestId);
        if (identified.IsIdentified)
        {
            return ModelListWriter.WriteAsync(context, view.Workers, view.Config.Models, identified.Caller.Tenant, time);
        }

        // Counted like the API's 401s: a flood of bad tokens shows in the metric whichever path it takes.
        record.RecordUnidentified(StatusCodes.Status401Unauthorized);
        return OpenAiError.Unidentified(context, identified.Failure);
    }

    // Pooled: the state machine carries the request across its waits, boxed at the first one.
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    private async ValueTask ProxyAsync(HttpContext context, string requestId, EndpointKind endpoint)
    {
        // The whole request runs on this config and the workers built for it, read once.
        var request = ProxyRequest.Rent(context, requestId, endpoint, state.Current, time);
        try
        {
            if (!identity.Identify(request, out var failure))
            {
                await OpenAiError.Unidentified(context, failure).ConfigureAwait(false);
                request.Status = context.Response.StatusCode;
                record.RecordUnidentified(request.Status);
                return;
            }

            try
            {
                if (await inspection.InspectAsync(request).ConfigureAwait(false) && await limits.TryAcquireAsync(request).ConfigureAwait(false))
                {
                    RateLimitHeaders.Write(context.Response, request.Limit.Lease.Requests, request.Limit.Lease.Tokens);
                    if (await admission.AdmitAsync(request).ConfigureAwait(false))
                    {
                        record.Journal(request);
                        await forwarding.ForwardAsync(request).ConfigureAwait(false);
                        // Preempted before its first byte: it waits again at the head of its queue,
                        // and only its completing attempt is accounted.
                        while (request.Forward.Error == ForwarderError.Preempted && await admission.RequeueAsync(request).ConfigureAwait(false))
                        {
                            await forwarding.ForwardAsync(request).ConfigureAwait(false);
                        }

                        accounting.Account(request);
                    }
                }

                await ProxyErrors.WriteAsync(request, time).ConfigureAwait(false);
            }
            finally
            {
                // Exactly once each, whichever way the request ended: an answer, a refusal, an
                // upstream failure, a client gone, or an exception (recorded as the 500 Kestrel
                // answers with, its journal entry settled).
                admission.Release(request);
                limits.Settle(request);
                record.Record(request);
            }
        }
        finally
        {
            RequestTrace.Stop(request);
            ProxyRequest.Return(request);
        }
    }
}
