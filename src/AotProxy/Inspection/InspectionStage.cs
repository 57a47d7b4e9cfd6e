using System.Runtime.CompilerServices;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Routing;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Threading;
using AotProxy.Tracing;

namespace AotProxy.Inspection;

// The inspect stage: the body, read whole up to server.max_request_bytes; one Utf8JsonReader pass
// over it (RequestInspector); the tenant's model allowlist; and the model's pool in the request's
// worker set. False: the request ends here, with ProxyRequest.Failure saying why.
internal sealed class InspectionStage
{
    // The served model, when the gateway chose it (an alias, model "auto").
    public const string ModelHeader = "x-gateway-model";

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<bool> InspectAsync(ProxyRequest request)
    {
        var context = request.Context;
        var (body, tooLarge) = await RequestBody.ReadAsync(context.Request, request.Snapshot.Server.MaxRequestBytes, context.RequestAborted).ConfigureAwait(false);
        if (body is null)
        {
            request.Failure = tooLarge ? ProxyFailure.BodyTooLarge : ProxyFailure.ClientClosedRequest;
            return false;
        }

        request.Body = body;
        var audio = EndpointTraits.TakesAudio(request.Endpoint);
        if (!audio)
        {
            request.PromptChunks = PromptChunks.Rent(body.Length);
        }

        var error = audio
            ? MultipartFormInspector.Inspect(body.Span, context.Request.ContentType, out var inspected, out var param)
            : RequestInspector.Inspect(body.Span, request.PromptChunks, out inspected, out param, request.Caller.Tenant.CacheSalt?.Seed ?? 0, request.Endpoint);
        if (error != InspectionError.None)
        {
            request.Failure = ProxyFailure.InvalidBody;
            request.InspectionError = error;
            request.InspectionParam = param;
            return false;
        }

        var model = inspected.Model;
        request.Inspected = inspected;
        request.AskedModel = model;
        request.Model = model;
        RequestTrace.Inspected(request.Trace, request.Endpoint, model, inspected.MaxTokens);
        var pools = request.Workers.Pools;
        var tenant = request.Caller.Tenant;
        var catalog = request.Snapshot.Models;
        if (model == ModelCatalog.Auto)
        {
            return ResolveAuto(request, inspected);
        }

        if (!catalog.Allows(tenant, model))
        {
            request.Failure = ProxyFailure.ModelNotAllowed;
            request.Label = pools.ContainsKey(model) ? model : string.Empty;
            return false;
        }

        var entry = catalog.Find(model);
        if (entry is { MaxTokens: > 0 } && EndpointTraits.Generates(request.Endpoint) && (inspected.MaxTokens == 0 || inspected.MaxTokens > entry.MaxTokens))
        {
            // The entry's cap, as the worker will get it: the reservation and the budgets see it too.
            request.Inspected = inspected = inspected with { MaxTokens = entry.MaxTokens };
            request.ModelCapped = true;
        }

        if (entry is { IsAlias: true })
        {
            return ResolveAlias(request, entry, inspected);
        }

        if (!pools.TryGetValue(model, out var pool))
        {
            // No worker serves the model now. A model some worker served since the start (every
            // worker of it removed by a reload), or any model while a worker without `models` has
            // not reported its own, is out of capacity: 503, which clients retry. Only a model no
            // worker ever served, with every worker's models known, is 404 model_not_found.
            var workers = request.Workers;
            var served = workers.HasServed(model);
            request.Failure = served ? ProxyFailure.ModelUnavailable
                : workers.AwaitsModels() ? ProxyFailure.ModelsUnreported
                : ProxyFailure.ModelNotFound;
            if (request.Failure != ProxyFailure.ModelNotFound)
            {
                request.Outcome = LedgerOutcome.NoCapacity;
            }

            // A label only for a model some worker served: a client's made-up names must not become series.
            request.Label = served ? model : string.Empty;
            return false;
        }

        request.Pool = pool;
        request.Label = model;
        return true;
    }

    // An alias: the target with the most spare capacity serves it.
    private static bool ResolveAlias(ProxyRequest request, ModelEntry alias, InspectedRequest inspected)
    {
        var pool = AliasTargets.Pick(alias.Targets, request.Workers, request.Snapshot);
        if (pool is null)
        {
            // No target is served now: out of capacity, as a model whose workers are gone.
            request.Failure = request.Workers.AwaitsModels() ? ProxyFailure.ModelsUnreported : ProxyFailure.ModelUnavailable;
            request.Outcome = LedgerOutcome.NoCapacity;
            return false;
        }

        Serve(request, inspected, pool);
        return true;
    }

    // Model "auto": AutoModel picks among the models the tenant may use (which need not list
    // "auto" itself), for what the request needs: its endpoint's kind (EndpointTraits.Needs), tools,
    // images, its context.
    private static bool ResolveAuto(ProxyRequest request, InspectedRequest inspected)
    {
        var needs = inspected.Needs | EndpointTraits.Needs(request.Endpoint);
        var demand = new AutoDemand(needs, inspected.PromptTokens, LimitStage.CompletionTokens(request, request.Snapshot.Limits));
        var choice = AutoModel.Choose(demand, request.Caller.Tenant, request.Workers, request.Snapshot);
        if (choice.Pool is not { } pool)
        {
            request.AutoDemand = demand;
            request.Failure = choice.Refusal == AutoRefusal.NothingFits ? ProxyFailure.NoModelFits : ProxyFailure.ModelUnavailable;
            request.Outcome = choice.Refusal == AutoRefusal.NothingFits ? LedgerOutcome.Rejected : LedgerOutcome.NoCapacity;
            return false;
        }

        Serve(request, inspected, pool);
        return true;
    }

    // The chosen served model is the request's from here on (limits, prices, the ledger, the
    // metrics); the body names it upstream, and the client sees it in the response's `model` (the
    // worker's) and in x-gateway-model.
    private static void Serve(ProxyRequest request, InspectedRequest inspected, WorkerPool pool)
    {
        request.Inspected = inspected with { Model = pool.Model };
        request.Model = pool.Model;
        request.ModelRewritten = true;
        request.Pool = pool;
        request.Label = pool.Model;
        request.Context.Response.Headers[ModelHeader] = pool.Model;
    }
}
