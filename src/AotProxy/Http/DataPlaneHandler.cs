using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Caching;
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
// routing middleware) and puts the stages in order: identify -> inspect -> cache -> limit -> admit ->
// route/pace/forward -> account, then the failure as an OpenAI error, and the finally that
// releases and records exactly once. Each stage's entry point is in its own folder; what they
// share travels in one ProxyRequest (docs/ARCHITECTURE.md walks through them).
internal sealed class DataPlaneHandler(
    GatewayState state,
    IdentityStage identity,
    InspectionStage inspection,
    ResponseCacheStage cache,
    LimitStage limits,
    AdmissionStage admission,
    ForwardingStage forwarding,
    AccountingStage accounting,
    RecordStage record,
    TimeProvider time)
{
    // The stages over the gateway's long-lived state; GatewayHost's wiring, and a test's.
    public static DataPlaneHandler Create(
        GatewayState state, AdmissionController admissions, Router router, TenantLimits tenantLimits, UsageRecorder usage, GatewayTelemetry telemetry, LedgerWriter? ledger, TimeProvider time, ILogger logger, SharedTenantLimits? sharedLimits = null, SharedWorkerSlots? sharedSlots = null)
    {
        var limits = new LimitStage(tenantLimits, telemetry.Limits, sharedLimits);
        var responses = state.Responses;
        telemetry.ResponseCache.CollectFrom(responses, () => state.Current.Config.ResponseCache);
        return new(
            state,
            new IdentityStage(time, logger),
            new InspectionStage(),
            new ResponseCacheStage(responses, limits, usage, telemetry.ResponseCache, time),
            limits,
            new AdmissionStage(admissions, time),
            new ForwardingStage(router, new Forwarder(time), new RetryBudget(time), Random.Shared, admissions, telemetry.Forwarding, telemetry.Pacing, time, logger, sharedSlots),
            new AccountingStage(usage, telemetry.Requests, time),
            new RecordStage(ledger, telemetry.Requests, telemetry.Errors, time),
            time);
    }

    private const string ModelPrefix = "/v1/models/";

    public Task HandleAsync(HttpContext context)
    {
        var requestId = RequestIds.Ensure(context);
        var request = context.Request;
        var path = request.Path.Value;
        if (Proxied(path) is { } endpoint)
        {
            return HttpMethods.IsPost(request.Method) ? ProxyAsync(context, requestId, endpoint).AsTask() : OpenAiError.MethodNotAllowed(context);
        }

        switch (path)
        {
            case "/v1/models":
                return HttpMethods.IsGet(request.Method) ? ModelsAsync(context, requestId, null) : OpenAiError.MethodNotAllowed(context);
            case { } models when models.Length > ModelPrefix.Length && models.StartsWith(ModelPrefix, StringComparison.Ordinal):
                // A model id may hold slashes (meta-llama/Llama-3.1-8B-Instruct): all after the prefix.
                // Clients escape them (the openai client sends meta-llama%2FLlama-3.1-8B-Instruct),
                // and Kestrel leaves %2F in the path, so the id is unescaped here.
                return HttpMethods.IsGet(request.Method) ? ModelsAsync(context, requestId, Uri.UnescapeDataString(models[ModelPrefix.Length..])) : OpenAiError.MethodNotAllowed(context);
            case "/health":
                context.Response.ContentType = "text/plain";
                return context.Response.WriteAsync("ok", context.RequestAborted);
            default:
                return OpenAiError.NotFound(context);
        }
    }

    // The proxied endpoints (POST), by path: vLLM's, with the aliases it serves them under.
    private static EndpointKind? Proxied(string? path) => path switch
    {
        "/v1/chat/completions" => EndpointKind.ChatCompletions,
        "/v1/completions" => EndpointKind.Completions,
        "/v1/embeddings" => EndpointKind.Embeddings,
        "/v1/responses" => EndpointKind.Responses,
        OpenAiError.MessagesPath => EndpointKind.Messages,
        "/v1/rerank" or "/rerank" or "/v2/rerank" => EndpointKind.Rerank,
        "/v1/score" or "/score" => EndpointKind.Score,
        "/pooling" => EndpointKind.Pooling,
        "/classify" => EndpointKind.Classify,
        "/tokenize" => EndpointKind.Tokenize,
        "/detokenize" => EndpointKind.Detokenize,
        "/v1/audio/transcriptions" => EndpointKind.Transcriptions,
        "/v1/audio/translations" => EndpointKind.Translations,
        _ => null,
    };

    // id: GET /v1/models/{id}; null: the list.
    private Task ModelsAsync(HttpContext context, string requestId, string? id)
    {
        var view = state.Current;
        var identified = identity.Identify(context, view.Config, requestId);
        if (identified.IsIdentified)
        {
            return id is null
                ? ModelListWriter.WriteAsync(context, view.Workers, view.Config.Models, identified.Caller.Tenant, time)
                : ModelListWriter.WriteOneAsync(context, view.Workers, view.Config.Models, identified.Caller.Tenant, id, time);
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
                if (await inspection.InspectAsync(request).ConfigureAwait(false) && !await cache.TryAnswerAsync(request).ConfigureAwait(false) && await limits.TryAcquireAsync(request).ConfigureAwait(false))
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
                cache.Complete(request);
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
