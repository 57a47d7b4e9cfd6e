using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Admin;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Gateway;
using AotProxy.Identity;
using AotProxy.Inspection;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Threading;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Http;

// The data plane's one request delegate: accept -> identify -> inspect -> limit -> admit ->
// route -> forward -> account. It dispatches on method and path itself; there is no routing middleware.
internal sealed class DataPlaneHandler(
    GatewayState state,
    AdmissionController admissions,
    Router router,
    Forwarder forwarder,
    RetryBudget retryBudget,
    Random random,
    UsageRecorder usage,
    TenantLimits limits,
    GatewayMetrics metrics,
    LedgerWriter? ledger,
    TimeProvider time,
    ILogger logger)
{
    // A client can send bad credentials at any rate: 20,000 of them wrote 20 MB of log (issue 14).
    private readonly LogThrottle _unidentifiedLog = new(TimeSpan.FromSeconds(1), time);

    public Task HandleAsync(HttpContext context)
    {
        var requestId = RequestIds.Ensure(context);
        var request = context.Request;
        var path = request.Path.Value;
        var isPost = HttpMethods.IsPost(request.Method);
        switch (path)
        {
            case "/v1/chat/completions" or "/v1/completions" or "/v1/embeddings":
                return isPost ? ProxyAsync(context, requestId).AsTask() : OpenAiError.MethodNotAllowed(context);
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
        var identified = Identify(context, view.Config, requestId);
        if (identified.IsIdentified)
        {
            return ModelListWriter.WriteAsync(context, view.Workers, identified.Caller.Tenant, time);
        }

        // Counted like the API's 401s: a flood of bad tokens shows in the metric whichever path it takes.
        Count(string.Empty, string.Empty, StatusCodes.Status401Unauthorized);
        return OpenAiError.Unidentified(context, identified.Failure);
    }

    // Pooled: the state machine carries the whole request's locals (~700 B), boxed at the first wait.
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    private async ValueTask ProxyAsync(HttpContext context, string requestId)
    {
        var started = time.GetTimestamp();
        var arrived = time.GetUtcNow();
        var view = state.Current; // the whole request runs on this config and these workers
        var snapshot = view.Config;
        var identified = Identify(context, snapshot, requestId);
        if (!identified.IsIdentified)
        {
            // No ledger row: there is no tenant to charge, and a flood of bad keys must not fill the ledger.
            await OpenAiError.Unidentified(context, identified.Failure).ConfigureAwait(false);
            Count(string.Empty, string.Empty, context.Response.StatusCode);
            return;
        }

        // A JWT class claim or a trusted x-customer-tier may have overridden the tenant's class.
        var caller = identified.Caller;

        // The one place that records, whichever way the request ends; an exception records the
        // 500 that Kestrel answers with, and settles the journal entry admission may have made.
        var journal = ledger?.NextJournal() ?? 0;
        var exit = new Exit(StatusCodes.Status500InternalServerError, LedgerOutcome.Rejected) { Journal = journal };
        try
        {
            exit = await ProxyIdentifiedAsync(context, view, caller, requestId, started, journal).ConfigureAwait(false);
        }
        finally
        {
            Finish(exit, snapshot, caller, requestId, arrived, started);
        }
    }

    // inspect -> limit -> admit, then ProxyAdmittedAsync; returns how the request ended.
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<Exit> ProxyIdentifiedAsync(HttpContext context, GatewayView view, Caller caller, string requestId, long started, long journal)
    {
        var snapshot = view.Config;
        var tenant = caller.Tenant;
        var exit = new Exit(StatusCodes.Status500InternalServerError, LedgerOutcome.Rejected);
        var (body, tooLarge) = await RequestBody.ReadAsync(context.Request, snapshot.Server.MaxRequestBytes, context.RequestAborted).ConfigureAwait(false);
        if (body is null)
        {
            if (tooLarge)
            {
                await OpenAiError.TooLarge(context, snapshot.Server.MaxRequestBytes).ConfigureAwait(false);
            }

            exit.Status = tooLarge ? StatusCodes.Status413PayloadTooLarge : 499;
            return exit;
        }

        using (body)
        {
            var error = RequestInspector.Inspect(body.Span, out var inspected, out var param);
            if (error != InspectionError.None)
            {
                await WriteInspectionErrorAsync(context, error, param).ConfigureAwait(false);
                exit.Status = StatusCodes.Status400BadRequest;
                return exit;
            }

            var model = inspected.Model;
            exit.Model = model;
            if (!tenant.AllowsModel(model))
            {
                await OpenAiError.ModelNotAllowed(context, model).ConfigureAwait(false);
                exit.Label = view.Workers.Pools.ContainsKey(model) ? model : string.Empty;
                exit.Status = StatusCodes.Status403Forbidden;
                return exit;
            }

            if (!view.Workers.Pools.TryGetValue(model, out var pool))
            {
                exit.Status = await WriteNoPoolAsync(context, model, view).ConfigureAwait(false);
                if (exit.Status == StatusCodes.Status503ServiceUnavailable)
                {
                    exit.Outcome = LedgerOutcome.NoCapacity;
                }

                // A label only for a model some worker served: a client's made-up names must not become series.
                exit.Label = view.Workers.HasServed(model) ? model : string.Empty;
                return exit;
            }

            exit.Label = model;

            // The limit stage: hard stops (429) before anything is queued. TPM and the budgets
            // reserve the estimated prompt plus max_tokens (the budgets also its worst-case cost);
            // the reservations settle to the usage below.
            var promptTokens = inspected.PromptTokens;
            var limit = limits.TryAcquire(tenant, promptTokens, CompletionReservation(context, inspected, snapshot.Limits), snapshot.Prices.For(model), snapshot.Limits.RejectOverrun);
            if (limit.State is not null)
            {
                metrics.CountLimitCheck(tenant.Name);
                if (!limit.IsAllowed)
                {
                    metrics.CountLimitRefusal(tenant.Name, limit.Refusal);
                    var budget = limit.Refusal is LimitRefusal.BudgetTokens or LimitRefusal.BudgetUsd;
                    await (budget
                        ? BudgetResponse.WriteRefusalAsync(context, limit, model, time)
                        : RateLimitResponse.WriteRefusalAsync(context, limit, model)).ConfigureAwait(false);
                    exit.Outcome = budget ? LedgerOutcome.InsufficientQuota : LedgerOutcome.RateLimited;
                    exit.Status = StatusCodes.Status429TooManyRequests;
                    return exit;
                }

                RateLimitResponse.WriteHeaders(context.Response, limit.Lease.Requests, limit.Lease.Tokens);
            }

            // The limit lease and the slot go back exactly once each, whatever happens below:
            // completion, upstream failure, client abort, admission refusal, or an exception.
            var admitted = false;
            Usage? settled = null;
            try
            {
                // [[time_windows]] active now change the class's priority, weight or buckets. A trusted
                // x-priority is a per-request decision by the proxy in front and outranks a window;
                // without one, the request takes the class's priority as the windows leave it.
                var classModel = snapshot.ClassOverrides.Apply(caller.Class, time);
                var priority = caller.PriorityFromHeader ? caller.Priority : classModel.Priority;

                // With scheduler.engine_priority, the worker's own scheduler (vLLM --scheduling-policy
                // priority) orders its queue by the priority this request is admitted with.
                var enginePriority = snapshot.Scheduler.EnginePriority ? priority : (int?)null;
                // A budget that cannot pay for max_tokens caps it (limits.budget_overrun = "cap").
                var cappedMaxTokens = limit.Budget.Capped ? (int)limit.Budget.Completion : (int?)null;
                if (inspected.NeedsUsageInjection || enginePriority is not null || cappedMaxTokens is not null)
                {
                    body.Apply(inspected.NeedsUsageInjection ? inspected.UsageSplice : default, inspected.PrioritySplice, enginePriority, inspected.MaxTokensSplice, cappedMaxTokens);
                }

                var admission = await admissions.AdmitAsync(
                    pool, tenant, classModel, priority, promptTokens, context.RequestAborted).ConfigureAwait(false);
                exit.Outcome = LedgerOutcome.Of(admission.Decision);
                exit.QueueWait = admission.Waited;
                if (!admission.IsAdmitted)
                {
                    exit.Status = await WriteRefusalAsync(context, admission, model, caller.Class).ConfigureAwait(false);
                    return exit;
                }

                admitted = true;
                exit.Journal = Journal(journal, snapshot, caller, requestId, model, promptTokens, admission.Waited, started);
                try
                {
                    exit = await ProxyAdmittedAsync(context, snapshot, pool, tenant, inspected, body.Memory, requestId, started, exit, admission.Slot).ConfigureAwait(false);
                    settled = exit.Usage;
                    // Nothing went upstream (no worker, no pacing turn): the limits take nothing.
                    admitted = exit.Outcome is not (LedgerOutcome.NoWorker or LedgerOutcome.PacingTimeout);
                }
                finally
                {
                    admission.Lease.Release(settled);
                }
            }
            finally
            {
                limit.Lease.Settle(admitted, settled);
            }
        }

        return exit;
    }

    // route -> forward -> account, for a request that holds a slot (and `slot`, the worker slot
    // behind it, which ForwardWithRetriesAsync gives back); returns `exit` with its worker, status
    // and usage (if any).
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<Exit> ProxyAdmittedAsync(
        HttpContext context, GatewaySnapshot snapshot, WorkerPool pool, TenantModel tenant, InspectedRequest inspected, ReadOnlyMemory<byte> body, string requestId, long started, Exit exit, WorkerSlot slot)
    {
        var model = inspected.Model;
        var route = new RouteRequest(inspected.PrefixHash, AffinityKey(context, snapshot.Routing, inspected));
        var reserved = inspected.PromptTokens + CompletionReservation(context, inspected, snapshot.Limits);
        var (result, worker) = await ForwardWithRetriesAsync(context, snapshot, pool, route, body, requestId, inspected.NeedsUsageInjection, reserved, inspected.PromptTokens, slot).ConfigureAwait(false);
        if (worker is null)
        {
            await OpenAiError.Overloaded(context, $"No worker can take requests for '{model}' right now.", 1).ConfigureAwait(false);
            exit.Outcome = LedgerOutcome.NoWorker;
            exit.Status = StatusCodes.Status503ServiceUnavailable;
            return exit;
        }

        exit.Worker = worker.Name;
        if (result.Error == ForwarderError.PacingTimeout)
        {
            exit.Outcome = LedgerOutcome.PacingTimeout;
        }
        else if (result.Error is not (ForwarderError.None or ForwarderError.ClientAborted))
        {
            HttpLog.UpstreamFailed(logger, requestId, worker.Name, result.Error.ToString());
        }

        if (result.Usage is { } used)
        {
            usage.Record(tenant, used);
            exit.Usage = used;
        }

        exit.Status = result.ResponseStarted ? result.StatusCode : await WriteForwardErrorAsync(context, result, worker.Name).ConfigureAwait(false);
        metrics.ObserveLatency(model, time.GetElapsedTime(started));
        if (result.FirstByte is { } firstByte)
        {
            metrics.ObserveTtft(model, firstByte);
            exit.FirstByte = firstByte;
        }

        return exit;
    }

    // max_tokens, else limits.default_max_tokens; an embedding generates nothing.
    private static long CompletionReservation(HttpContext context, in InspectedRequest inspected, LimitsModel limits) =>
        inspected.MaxTokens > 0 ? inspected.MaxTokens
        : context.Request.Path.Value == "/v1/embeddings" ? 0
        : limits.DefaultMaxTokens;

    // No worker serves the model now. A model some worker served since the start (every worker of
    // it removed by a reload), or any model while a worker without `models` has not reported its
    // own, is out of capacity: 503 with Retry-After, which clients retry. Only a model no worker
    // ever served, with every worker's models known, is 404 model_not_found.
    private static async Task<int> WriteNoPoolAsync(HttpContext context, string model, GatewayView view)
    {
        var retryAfter = ActiveHealth.ReturnSeconds(view.Config.Health);
        if (view.Workers.HasServed(model))
        {
            await OpenAiError.Overloaded(context, $"No worker can take requests for '{model}' right now.", retryAfter).ConfigureAwait(false);
            return StatusCodes.Status503ServiceUnavailable;
        }

        if (view.Workers.AwaitsModels())
        {
            await OpenAiError.Overloaded(context, "No worker has reported this model yet, and some have not reported their models (GET /v1/models).", retryAfter).ConfigureAwait(false);
            return StatusCodes.Status503ServiceUnavailable;
        }

        await OpenAiError.ModelNotFound(context, model).ConfigureAwait(false);
        return StatusCodes.Status404NotFound;
    }

    private static async Task<int> WriteRefusalAsync(HttpContext context, AdmissionResult admission, string model, ClassModel classModel)
    {
        var retryAfter = admission.RetryAfterSeconds;
        switch (admission.Decision)
        {
            case AdmissionDecision.Cancelled:
                return 499;
            case AdmissionDecision.QueueFull:
                await OpenAiError.Overloaded(context, $"The queue for '{model}' is full; retry after {retryAfter} s.", retryAfter).ConfigureAwait(false);
                break;
            case AdmissionDecision.TimedOut:
                await OpenAiError.Overloaded(context, $"No capacity for '{model}' came free within {classModel.MaxQueueWait.TotalSeconds:0.###} s (class '{classModel.Name}' max_queue_wait); retry after {retryAfter} s.", retryAfter).ConfigureAwait(false);
                break;
            case AdmissionDecision.CapacityGuard:
                await OpenAiError.Overloaded(context, $"Class '{classModel.Name}' may use up to {classModel.MaxUtilization:P0} of the workers for '{model}', and that much is in use; retry after {retryAfter} s.", retryAfter).ConfigureAwait(false);
                break;
            default:
                await OpenAiError.Overloaded(context, $"No worker can take requests for '{model}' right now.", retryAfter).ConfigureAwait(false);
                break;
        }

        return StatusCodes.Status503ServiceUnavailable;
    }

    // route -> forward, again on another worker while the worker failed before any response byte
    // reached the client, within retries.max_attempts and the retry budget. Returns the last
    // attempt's result and worker; no worker at all means none could take the request.
    // `reserved` (prompt estimate + max_tokens) is what a paced worker's tpm is charged. `slot`:
    // admission's worker slot, which each pick moves to the worker it picks; given back when an
    // attempt ends, or when there is none.
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<(ForwardResult Result, WorkerState? Worker)> ForwardWithRetriesAsync(
        HttpContext context, GatewaySnapshot snapshot, WorkerPool pool, RouteRequest route, ReadOnlyMemory<byte> body, string requestId, bool stripUsage, long reserved, long promptTokens, WorkerSlot slot)
    {
        var retries = snapshot.Retries;
        var forwarding = snapshot.Forwarding;
        retryBudget.OnRequest();
        ulong tried = 0;
        ForwardResult result = default;
        WorkerState? last = null;
        for (var attempt = 1; ; attempt++)
        {
            var worker = router.Pick(pool, snapshot, route, ref tried, ref slot, out var permit);
            if (worker is null)
            {
                ReleaseSlot(ref slot); // admission's, on a worker that went away since
                return (result, last);
            }

            last = worker;
            ForwardResult? unpaced = null;
            try
            {
                if (worker.Pacer is { } pacer)
                {
                    unpaced = await PaceAsync(context, worker, pacer, reserved).ConfigureAwait(false);
                }
            }
            catch
            {
                // Its 503 could not be written (the client went away meanwhile): the slot comes back all the same.
                worker.Breaker.OnAbandoned(permit);
                ReleaseSlot(ref slot);
                throw;
            }

            if (unpaced is { } notSent)
            {
                // Nothing was sent: no verdict on the worker, but a half-open breaker's trial slot must come back.
                worker.Breaker.OnAbandoned(permit);
                ReleaseSlot(ref slot);
                return (notSent, worker);
            }

            // A 5xx is held back for a retry only when one can follow; otherwise it passes through unchanged.
            var mayRetry = attempt < retries.MaxAttempts && retryBudget.CanRetry(retries.BudgetRatio) && router.HasCandidate(pool, snapshot, tried);
            var attemptStarted = time.GetTimestamp();
            worker.OnRequestStart();
            metrics.ActiveRequests.Inc();
            try
            {
                // The prompt estimate is what a response that ends without usage is accounted at.
                result = await forwarder.ForwardAsync(
                    context, worker, body, requestId, stripUsage, promptTokens, mayRetry, forwarding.ActivityTimeout, forwarding.ConnectTimeout, snapshot.Auth.TrustedSources).ConfigureAwait(false);
            }
            catch
            {
                // No verdict on the worker, but a half-open breaker's trial slot must come back.
                worker.Breaker.OnAbandoned(permit);
                throw;
            }
            finally
            {
                metrics.ActiveRequests.Dec();
                worker.OnRequestEnd();
                ReleaseSlot(ref slot);
            }

            // Time per output token only from streams: a JSON answer's first byte comes after its last token.
            var decoded = result.EventStream ? result.Usage?.CompletionTokens ?? 0 : 0;
            router.Complete(worker, permit, Outcome(result), result.FirstByte, time.GetElapsedTime(attemptStarted), decoded, snapshot);
            if (!mayRetry || !result.MayRetry || !retryBudget.TrySpend(retries.BudgetRatio))
            {
                return (result, worker);
            }

            metrics.CountRetry(worker.Name);
            HttpLog.Retrying(logger, requestId, worker.Name, result.Error, attempt + 1);
            try
            {
                await Task.Delay(Backoff.Delay(attempt, retries, random), time, context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (new ForwardResult(ForwarderError.ClientAborted, 499, null, null, ResponseStarted: false), worker);
            }
        }
    }

    // The attempt is over: its worker's slot goes back, and waiters of other models it serves may take it.
    private void ReleaseSlot(ref WorkerSlot slot)
    {
        if (slot.Worker is { } worker)
        {
            slot.Release();
            admissions.OnSlotFreed(worker);
        }
    }

    // Upstream pacing (a worker with rpm/tpm): waits for the worker's turn. Null: go now; else the
    // request ends here, with the client gone or a 503 written (no turn within max_wait).
    private async ValueTask<ForwardResult?> PaceAsync(HttpContext context, WorkerState worker, UpstreamPacer pacer, long reserved)
    {
        var paced = await pacer.WaitAsync(reserved, context.RequestAborted).ConfigureAwait(false);
        if (paced.Waited > TimeSpan.Zero)
        {
            metrics.ObservePacingWait(worker.Name, paced.Waited);
        }

        switch (paced.Outcome)
        {
            case PacingOutcome.Granted:
                return null;
            case PacingOutcome.Cancelled:
                return new ForwardResult(ForwarderError.ClientAborted, 499, null, null, ResponseStarted: false);
            default:
                await OpenAiError.Overloaded(
                    context,
                    $"Worker {worker.Name} is paced to its upstream's rate limits and had no turn within {pacer.Limits.MaxWait.TotalSeconds:0.###} s; retry after {paced.RetryAfterSeconds} s.",
                    paced.RetryAfterSeconds).ConfigureAwait(false);
                return new ForwardResult(ForwarderError.PacingTimeout, StatusCodes.Status503ServiceUnavailable, null, null, ResponseStarted: true);
        }
    }

    private static AttemptOutcome Outcome(in ForwardResult result) => result.Error switch
    {
        ForwarderError.ClientAborted => AttemptOutcome.ClientAborted,
        ForwarderError.None => result.StatusCode >= 500 ? AttemptOutcome.UpstreamFailed : AttemptOutcome.Succeeded,
        _ => AttemptOutcome.UpstreamFailed,
    };

    // consistent_hash's key: the configured header, else the body's `user`, else the prompt prefix.
    private static ulong AffinityKey(HttpContext context, RoutingModel routing, in InspectedRequest inspected)
    {
        if (routing.HashHeader.Length > 0 && context.Request.Headers.TryGetValue(routing.HashHeader, out var header) && header.Count > 0 && !string.IsNullOrEmpty(header[0]))
        {
            return StableHash.Of(header[0].AsSpan());
        }

        return inspected.UserHash != 0 ? inspected.UserHash : inspected.PrefixHash;
    }

    private IdentifyResult Identify(HttpContext context, GatewaySnapshot snapshot, string requestId)
    {
        var identified = snapshot.Callers.Identify(context, time);
        if (!identified.IsIdentified && _unidentifiedLog.TryEnter(out var suppressed))
        {
            HttpLog.Unidentified(logger, requestId, identified.Failure, suppressed);
        }

        return identified;
    }

    private static Task WriteInspectionErrorAsync(HttpContext context, InspectionError error, string? param) => error switch
    {
        InspectionError.MissingModel => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "missing_required_parameter", "The request has no 'model'.", param),
        InspectionError.InvalidField => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_type", $"'{param}' has the wrong type.", param),
        InspectionError.InvalidText => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_value", $"'{param}' is not valid UTF-8 text (invalid bytes, or an escaped lone surrogate such as \\ud800).", param),
        InspectionError.NotAnObject => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_json", "The request body must be a JSON object."),
        _ => OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_json", "The request body is not valid JSON."),
    };

    private static async Task<int> WriteForwardErrorAsync(HttpContext context, ForwardResult result, string worker)
    {
        switch (result.Error)
        {
            case ForwarderError.UpstreamStatus:
                // Held back for a retry that then could not happen (budget spent meanwhile).
                await OpenAiError.UpstreamFailed(context, $"Worker {worker} answered HTTP {result.StatusCode}.").ConfigureAwait(false);
                return StatusCodes.Status502BadGateway;
            case ForwarderError.UpstreamTimeout:
                await OpenAiError.UpstreamTimeout(context, $"Worker {worker} did not answer in time.").ConfigureAwait(false);
                return StatusCodes.Status504GatewayTimeout;
            case ForwarderError.ClientAborted:
                return 499;
            case ForwarderError.UpstreamProtocol:
                await OpenAiError.UpstreamFailed(context, $"Worker {worker} sent an invalid HTTP response.").ConfigureAwait(false);
                return StatusCodes.Status502BadGateway;
            case ForwarderError.UpstreamResponseBody:
                await OpenAiError.UpstreamFailed(context, $"Worker {worker} broke off its response before any of it reached the client.").ConfigureAwait(false);
                return StatusCodes.Status502BadGateway;
            default:
                await OpenAiError.UpstreamFailed(context, $"Worker {worker} could not be reached.").ConfigureAwait(false);
                return StatusCodes.Status502BadGateway;
        }
    }

    private void Count(string model, string tenantClass, int status) =>
        metrics.CountRequest(model, tenantClass, status);

    // At admission: the ledger journals the row this request leaves if the gateway dies before
    // Finish (`interrupted`, charged its prompt estimate). Returns the number Finish settles, 0: none.
    private long Journal(long journal, GatewaySnapshot snapshot, in Caller caller, string requestId, string model, long promptTokens, TimeSpan queueWait, long started) =>
        ledger is not null && ledger.TryJournal(journal, RequestRecord.Interrupted(
            requestId, time.GetUtcNow() - time.GetElapsedTime(started), caller.Tenant.Name, caller.KeyId, caller.Class.Name, model, promptTokens, queueWait, snapshot.Prices.For(model)))
            ? journal
            : 0;

    // The record stage, once per identified request: the request metric and one ledger row.
    private void Finish(in Exit exit, GatewaySnapshot snapshot, in Caller caller, string requestId, DateTimeOffset arrived, long started)
    {
        Count(exit.Label, caller.Class.Name, exit.Status);
        if (ledger is null)
        {
            return;
        }

        // The cost the budgets charged: the usage at the model's [[prices]]; none without usage.
        var usage = exit.Usage ?? default;
        ledger.TryRecord(new RequestRecord(
            requestId,
            arrived,
            caller.Tenant.Name,
            caller.KeyId,
            caller.Class.Name,
            exit.Model,
            exit.Worker,
            usage,
            exit.QueueWait.TotalMilliseconds,
            exit.FirstByte?.TotalMilliseconds,
            time.GetElapsedTime(started).TotalMilliseconds,
            exit.Status,
            exit.Outcome,
            CostNanos: exit.Usage is null ? 0 : snapshot.Prices.CostNanos(exit.Model, usage)),
            exit.Journal);
    }

    // How a request ended, filled in stage by stage: a struct, so that recording allocates nothing.
    private struct Exit(int status, string outcome)
    {
        public int Status = status;
        public string Outcome = outcome;       // a LedgerOutcome
        public string Model = string.Empty;    // as the client asked
        public string Label = string.Empty;    // the metrics' model label: a served model or ""
        public string Worker = string.Empty;
        public Usage? Usage;
        public TimeSpan QueueWait;
        public TimeSpan? FirstByte;
        public long Journal;                   // the ledger's journal entry for an admitted request; 0: none
    }
}
