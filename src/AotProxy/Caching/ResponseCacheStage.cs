using System.Buffers;
using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Http;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Threading;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Caching;

// The response cache stage, between inspection and limits: a deterministic request of a tenant
// or model that opted in (response_cache = true) is looked up by its key (ResponseCacheKey). A
// hit is answered here, as the original was relayed, and skips limits, admission and routing;
// it is free unless [response_cache] charge_hits (then the limits are taken and settled to the
// original's usage, a refusal as for any request). A miss goes on with its answer recorded
// (ResponseRecorder), and Complete stores it when it ended whole and 2xx.
internal sealed class ResponseCacheStage(ResponseCache cache, LimitStage limits, UsageRecorder usage, ResponseCacheTelemetry telemetry, TimeProvider time)
{
    public const string Header = "x-gateway-cache";

    // The answer's form is in the key: a stream and a JSON answer of one body are kept apart
    // (converting one into the other is each API's own work), and so are streams with and
    // without the usage chunk the client asked for.
    private const byte JsonForm = 0;
    private const byte EventsForm = 1;
    private const byte EventsWithUsageForm = 2;

    // True: the request ended here (a hit answered, or a charged hit refused by its limits).
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<bool> TryAnswerAsync(ProxyRequest request)
    {
        var settings = request.Snapshot.ResponseCache;
        if (!OptedIn(request, settings) || Key(request) is not { } key)
        {
            return false;
        }

        var context = request.Context;
        request.CacheKey = key;
        var entry = cache.Find(key);
        if (entry is null)
        {
            request.Cache = ResponseCacheOutcome.Miss;
            context.Response.Headers[Header] = "miss";
            telemetry.CountMiss(request.Model);
            if (!QueueUpdates.Requested(context.Request, request.Inspected.Stream))
            {
                // After queue updates the client's bytes start with the queue's comments: not recorded.
                var recorder = new ResponseRecorder(context.Features.GetRequiredFeature<IHttpResponseBodyFeature>(), settings.MaxEntryBytes);
                context.Features.Set<IHttpResponseBodyFeature>(recorder);
                request.Recorder = recorder;
            }

            return false;
        }

        if (settings.ChargeHits && !await limits.TryAcquireAsync(request).ConfigureAwait(false))
        {
            return true; // refused as any request of the tenant would be: no hit
        }

        request.Cache = ResponseCacheOutcome.Hit;
        telemetry.CountHit(request.Model);
        var charged = settings.ChargeHits ? entry.Usage : (Usage?)null;
        if (charged is { } used)
        {
            usage.Record(request.Caller.Tenant, used);
        }

        request.Usage = charged;
        request.Outcome = LedgerOutcome.CacheHit;
        request.Forward = new ForwardResult(ForwarderError.None, entry.Status, null, ResponseStarted: true, EventStream: entry.EventEnds is not null);
        if (!await ReplayAsync(request, entry).ConfigureAwait(false))
        {
            request.Failure = ProxyFailure.ClientClosedRequest;
        }

        return true;
    }

    // DataPlaneHandler's finally, once: a miss's recording goes back, and becomes an entry when
    // the worker's answer reached the client whole: 2xx, no error, not cut at a budget, with the
    // usage the worker reported (an estimate means it was cut short).
    public void Complete(ProxyRequest request)
    {
        if (request.Recorder is not { } recorder)
        {
            return;
        }

        request.Recorder = null;
        request.Context.Features.Set(recorder.Inner);
        using (recorder)
        {
            var result = request.Forward;
            if (request.Failure != ProxyFailure.None || result.Error != ForwarderError.None || result.BudgetCut || recorder.Overflowed
                || result.StatusCode is < 200 or >= 300 || request.Meter.Usage is not { Estimated: false } original)
            {
                return;
            }

            var body = recorder.Recorded.ToArray();
            var contentType = request.Context.Response.ContentType ?? "application/json";
            cache.Add(new CachedResponse(request.CacheKey, result.StatusCode, contentType, body, result.EventStream ? EventEnds(body) : null, original, request.Model, time.GetTimestamp()));
        }
    }

    // Where each SSE event ends in a recorded stream (the relay only ever sent whole events).
    internal static int[] EventEnds(byte[] body)
    {
        var ends = new List<int>();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(body));
        while (SseEventScanner.TryReadEvent(ref reader, out _))
        {
            ends.Add((int)reader.Consumed);
        }

        if (ends.Count == 0 || ends[^1] < body.Length)
        {
            ends.Add(body.Length);
        }

        return [.. ends];
    }

    private static bool OptedIn(ProxyRequest request, ResponseCacheModel settings)
    {
        if (!settings.Enabled || settings.MaxBytes == 0 || request.Pool is null)
        {
            return false;
        }

        var models = request.Snapshot.Models;
        return request.Caller.Tenant.ResponseCache || models.Find(request.AskedModel) is { ResponseCache: true } || models.Find(request.Model) is { ResponseCache: true };
    }

    private static UInt128? Key(ProxyRequest request)
    {
        var caller = request.Caller;
        var shared = caller.Class.SharedResponseCache;
        var inspected = request.Inspected;
        var form = !inspected.Stream ? JsonForm : inspected.IncludeUsage ? EventsWithUsageForm : EventsForm;
        return ResponseCacheKey.Of(request.Body!.Span, request.Endpoint, form, request.Model, shared, shared ? caller.Class.Name : caller.Tenant.Name);
    }

    // As the original went out: its status and content type, a JSON body at once, an event stream
    // event by event (each flushed, as the relay flushed them). False: the client went away.
    private async ValueTask<bool> ReplayAsync(ProxyRequest request, CachedResponse entry)
    {
        var response = request.Context.Response;
        response.StatusCode = entry.Status;
        response.ContentType = entry.ContentType;
        response.Headers[Header] = "hit";
        TimingHeaders.Write(request, time.GetTimestamp(), time);
        var body = entry.Body.AsMemory();
        var aborted = request.Context.RequestAborted;
        try
        {
            if (entry.EventEnds is not { } ends)
            {
                response.ContentLength = body.Length;
                var written = await response.BodyWriter.WriteAsync(body, aborted).ConfigureAwait(false);
                return !written.IsCanceled;
            }

            var start = 0;
            foreach (var end in ends)
            {
                var flushed = await response.BodyWriter.WriteAsync(body[start..end], aborted).ConfigureAwait(false);
                if (flushed.IsCompleted || flushed.IsCanceled)
                {
                    return false;
                }

                start = end;
            }

            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
