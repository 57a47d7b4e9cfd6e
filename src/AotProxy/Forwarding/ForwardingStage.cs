using System.Runtime.CompilerServices;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Inspection;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Threading;
using AotProxy.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Forwarding;

// The route, pace and forward stage, for an admitted request: the body as the worker gets it,
// then attempts until one counts: the router picks a worker and moves the request's slot there,
// a paced worker (rpm/tpm) waits for its turn, the forwarder sends the request and streams the
// answer back. A worker that failed, or pushed back (503/429: full), before any byte reached the
// client is retried on another, within retries.max_attempts and the retry budget, after a backoff. ProxyRequest.Forward is the
// last attempt's result, and ProxyRequest.Meter what it used; a failure is a value (ProxyRequest.Failure)
// that Http/ProxyErrors writes.
internal sealed class ForwardingStage(
    Router router,
    Forwarder forwarder,
    RetryBudget retryBudget,
    Random random,
    AdmissionController admissions,
    ForwardingTelemetry telemetry,
    PacingTelemetry pacing,
    TimeProvider time,
    ILogger logger,
    SharedWorkerSlots? sharedSlots = null)
{
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    public async ValueTask ForwardAsync(ProxyRequest request)
    {
        // A stream holds this method's box to its end, and every local used past an await is a
        // field of it: what the attempts need of the request (its context, snapshot, pool, body) is
        // read from the request where it is used (perf/RESULTS.md, issue 22, third pass).
        PrepareBody(request);
        var inspected = request.Inspected;
        var session = SessionHash(request.Context, request.Snapshot.Routing, inspected);
        var route = new RouteRequest(inspected.PrefixHash, session != 0 ? session : inspected.PrefixHash, request.PromptChunks.AsMemory(0, inspected.PromptChunks), inspected.PromptTokens, session);
        retryBudget.OnRequest();
        ulong tried = 0;
        // A preemptible request's attempts may be cancelled before their first byte (PreemptionTicket).
        var preemption = request.Preemption.IsArmed ? request.Preemption : null;
        ForwardResult result = default;
        WorkerState? last = null;
        for (var attempt = 1; ; attempt++)
        {
            // Moves admission's worker slot to the worker it picks; none: the slot (on a worker that
            // went away since) goes back, and the last attempt's result stands.
            var worker = router.Pick(request.Pool!, request.Snapshot, route, ref tried, ref request.Slot, out var permit);
            if (worker is null)
            {
                admissions.ReleaseSlot(ref request.Slot);
                break;
            }

            if (sharedSlots is not null)
            {
                // [cluster]: the worker's slot fleet-wide too, waiting in place while it is full on
                // other replicas; none within the class's max_queue_wait: as if no worker could take it.
                SlotGrant grant;
                try
                {
                    // First its tenant's turn on the fleet's workers (fair share fleet-wide), once.
                    // Waiting for the turn or for the slot is queued time (x-gateway-queue-ms).
                    // A slot that holds the fleet's grant already was handed over by a request
                    // preempted for this one (Admission/SlotHandover): its turn at once, no new grant.
                    var maxWait = request.Class!.MaxQueueWait;
                    var handedOver = request.Slot.Grant != SlotGrant.None;
                    var turned = false;
                    if (!request.Lease.OnFleet)
                    {
                        var turnFrom = time.GetTimestamp();
                        var turn = request.Lease.FleetTurnAsync(maxWait, request.Context.RequestAborted, handedOver);
                        var queued = !turn.IsCompleted;
                        turned = await turn.ConfigureAwait(false);
                        var waited = time.GetElapsedTime(turnFrom);
                        request.QueueWait += queued ? waited : TimeSpan.Zero;
                        if (turned)
                        {
                            request.Lease = request.Lease.Turned;
                            request.Lease.StartStream(request.Streamed); // its chunks charge the fleet's counter too
                            maxWait -= waited;
                        }
                    }

                    try
                    {
                        // A preemptible request waiting here gives its place up at once when it is
                        // preempted; one of a class above a preemptible one may preempt on any replica.
                        var acquired = request.Lease.OnFleet && !handedOver
                            ? await sharedSlots.AcquireAsync(worker, maxWait, WantOf(request), preemption?.Token ?? default, request.Context.RequestAborted).ConfigureAwait(false)
                            : default;
                        request.QueueWait += acquired.Waited;
                        grant = handedOver && request.Lease.OnFleet ? request.Slot.Grant : acquired.Grant;
                        if (acquired.MovedTo is { } moved)
                        {
                            // Its want on the pool was granted another worker's slot: it goes there.
                            if (router.TryMove(request.Pool!, request.Snapshot, route, moved, ref tried, ref request.Slot, ref permit))
                            {
                                worker = moved;
                            }
                            else
                            {
                                moved.Shared!.Release(grant);
                                grant = SlotGrant.None;
                            }
                        }
                    }
                    finally
                    {
                        if (turned)
                        {
                            request.Lease.LeftForSlot();
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    grant = SlotGrant.None;
                    last = worker;
                    result = Aborted;
                }

                if (grant == SlotGrant.None)
                {
                    worker.Breaker.OnAbandoned(permit);
                    admissions.ReleaseSlot(ref request.Slot);
                    break;
                }

                request.Slot.Granted(grant);
                if (grant == SlotGrant.Shared)
                {
                    preemption?.OnFleetSlot(worker.Name); // a want on this worker elsewhere may preempt it now
                }
            }

            last = worker;
            TraceSpan.Event(request.Trace, TraceNames.RouteEvent, TraceNames.Worker, worker.Name);
            var mayRetry = false;
            var attemptStarted = 0L;
            try
            {
                if (worker.Pacer is { } pacer)
                {
                    // The whole reservation, as the upstream counts its tpm: prompt + max_tokens (capped by a budget).
                    var paced = await pacer.WaitAsync(request.Reservation.Total, request.Context.RequestAborted).ConfigureAwait(false);
                    if (paced.Waited > TimeSpan.Zero)
                    {
                        pacing.ObserveWait(worker.Name, paced.Waited);
                    }

                    if (paced.Outcome != PacingOutcome.Granted)
                    {
                        // Nothing was sent: no verdict on the worker, but a half-open breaker's trial slot must come back.
                        worker.Breaker.OnAbandoned(permit);
                        result = paced.Outcome == PacingOutcome.Cancelled ? Aborted : PacingTimedOut;
                        request.RetryAfterSeconds = paced.RetryAfterSeconds;
                        request.PacingMaxWait = pacer.Limits.MaxWait;
                        break;
                    }
                }

                // A 5xx or 429 is held back for a retry only when one can follow; otherwise it passes through unchanged.
                var retries = request.Snapshot.Retries;
                mayRetry = attempt < retries.MaxAttempts && retryBudget.CanRetry(retries.BudgetRatio) && router.HasCandidate(request.Pool!, request.Snapshot, tried);
                attemptStarted = time.GetTimestamp();
                TimingHeaders.Write(request, attemptStarted, time);
                worker.OnRequestStart();
                request.Prefill.Start(worker, route, request.Inspected.Stream, request.Snapshot.Routing);
                telemetry.OnAttemptStart();
                var span = UpstreamTrace.Start(request, worker, attempt);
                var traceContext = span ?? request.Trace; // sampled out: no attempt span, the request's ids with flag 00
                // Each attempt draws on the stream's budget afresh: a failed one gave its debits back.
                request.Meter.Start(StreamBudget.For(request));
                try
                {
                    result = await forwarder.ForwardAsync(request, worker, mayRetry, traceContext, preemption).ConfigureAwait(false);
                }
                finally
                {
                    UpstreamTrace.Stop(span, result, request.Meter.Usage);
                    telemetry.OnAttemptEnd();
                    request.Prefill.End();
                    worker.OnRequestEnd();
                }
            }
            catch
            {
                // No verdict on the worker, but a half-open breaker's trial slot must come back.
                worker.Breaker.OnAbandoned(permit);
                throw;
            }
            finally
            {
                // The attempt is over: its worker's slot goes back, and other models' waiters may
                // take it; a preempted one's goes with its admission slot to the waiter it was
                // preempted for (AdmissionStage.RequeueAsync), fleet grant and all.
                if (preemption is not { IsPreempted: true })
                {
                    preemption?.OnFleetSlot(null);
                    admissions.ReleaseSlot(ref request.Slot);
                }
            }

            // Time per output token only from streams: a JSON answer's first byte comes after its last token.
            var decoded = result.EventStream ? request.Meter.Usage?.CompletionTokens ?? 0 : 0;
            var opened = sharedSlots is null ? 0 : worker.Breaker.TimesOpened;
            var attemptTime = time.GetElapsedTime(attemptStarted);
            request.UpstreamTime += attemptTime;
            var outcome = Outcome(result);
            router.Complete(worker, permit, outcome, result.FirstByte, attemptTime, decoded, request.Snapshot, result.StatusCode, result.RetryAfter);
            // Protection counts each attempt here, once, a retried failure too (or a worker failing
            // half its requests is invisible to the error-rate tolerances), and a stream's first
            // token as its client waited for it.
            request.Lease.Observe(outcome, result.EventStream && result.FirstByte is { } firstByte ? ClientFirstToken(request, attemptStarted, firstByte) : null);
            if (sharedSlots is not null && worker.Breaker.TimesOpened != opened)
            {
                sharedSlots.ShareBreakerOpen(worker.Name, request.Snapshot.CircuitBreaker.OpenTimeout); // the other replicas open theirs too
            }

            if (!mayRetry || !result.MayRetry || !retryBudget.TrySpend(request.Snapshot.Retries.BudgetRatio))
            {
                break;
            }

            telemetry.CountRetry(worker.Name);
            HttpLog.Retrying(logger, request.RequestId, worker.Name, result.Error, attempt + 1);
            try
            {
                await Task.Delay(Backoff.Delay(attempt, request.Snapshot.Retries, random), time, request.Context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                result = Aborted;
                break;
            }
        }

        if (preemption is not null && preemption.Finish())
        {
            // Preempted, maybe between attempts: whatever the last one left is not this request's end.
            result = Preempted;
            request.Meter.Usage = null;
        }

        End(request, last, result);
    }

    // [cluster]: what the request brings to the worker's grant script: its class's priority, and
    // whether a less important class is preemptible (then its refusal writes a want that may preempt).
    // Its want names the pool: it may take a slot of any of its workers.
    private static FleetWant WantOf(ProxyRequest request) =>
        new(request.Class!.Priority, request.Class.Priority < PreemptionTicket.LeastPreemptible(request.Snapshot.Classes), request.Pool!.Workers);

    // The stage's own results come before an attempt, or after a retried one: none has a usage (ContentMeter.Usage).
    private static ForwardResult Preempted => new(ForwarderError.Preempted, 0, null, ResponseStarted: false);

    private static ForwardResult Aborted => new(ForwarderError.ClientAborted, GatewayStatusCodes.Status499ClientClosedRequest, null, ResponseStarted: false);

    private static ForwardResult PacingTimedOut => new(ForwarderError.PacingTimeout, StatusCodes.Status503ServiceUnavailable, null, ResponseStarted: false);

    // How the stage ended, for the stages after it: the worker, and a failure unless the answer
    // (or part of it) went out.
    private void End(ProxyRequest request, WorkerState? worker, in ForwardResult result)
    {
        request.Forward = result;
        if (worker is null)
        {
            request.Failure = ProxyFailure.NoWorker;
            request.Outcome = LedgerOutcome.NoWorker;
            return;
        }

        request.Upstream = worker;
        request.Worker = worker.Name;
        if (result.Error == ForwarderError.PacingTimeout)
        {
            request.Failure = ProxyFailure.PacingTimeout;
            request.Outcome = LedgerOutcome.PacingTimeout;
            return;
        }

        if (result.Error is not (ForwarderError.None or ForwarderError.ClientAborted))
        {
            HttpLog.UpstreamFailed(logger, request.RequestId, worker.Name, result.Error.ToString());
        }

        if (!result.ResponseStarted)
        {
            request.Failure = result.Error == ForwarderError.ClientAborted ? ProxyFailure.ClientClosedRequest : ProxyFailure.Upstream;
        }
    }

    // The body as the worker gets it, rewritten in one copy when it must be: include_usage turned
    // on (the gateway needs the usage chunk to account a stream), scheduler.engine_priority's
    // "priority" (the worker's own scheduler orders its queue by the priority this request was
    // admitted with, vLLM --scheduling-policy priority), a budget's cap on max_tokens, and the
    // tenant's cache_salt (prefix-cache isolation, TenantCacheSalt), a [[models]] max_tokens cap, and
    // the served model in place of an alias. Inspected.NeedsUsageInjection: the usage chunk the
    // gateway asked for is to be stripped from the answer. Once per request: a preempted request
    // forwarded again has its body rewritten already (the splices' offsets are the client's body's).
    private static void PrepareBody(ProxyRequest request)
    {
        var inspected = request.Inspected;
        if (request.BodyPrepared)
        {
            return;
        }

        request.BodyPrepared = true;
        var enginePriority = request.Snapshot.Scheduler.EnginePriority ? request.Priority : (int?)null;
        var cappedMaxTokens = request.Reservation.Capped ? (int)request.Reservation.Completion
            : request.ModelCapped ? inspected.MaxTokens
            : (int?)null;
        if (inspected.Form.IsForm)
        {
            PrepareForm(request, cappedMaxTokens);
            return;
        }

        var model = request.ModelRewritten ? request.Pool!.ModelJson : null;
        // Pooling and tokenizer requests share no KV cache: only generating requests carry the
        // tenant's cache_salt, and only where vLLM reads it (its Anthropic request model has no
        // cache_salt and drops it).
        var salt = EndpointTraits.Generates(request.Endpoint) && request.Endpoint != EndpointKind.Messages ? request.Caller.Tenant.CacheSalt : null;
        if (inspected.NeedsUsageInjection || enginePriority is not null || cappedMaxTokens is not null || salt is not null || model is not null)
        {
            request.Body!.Apply(inspected.NeedsUsageInjection ? inspected.UsageSplice : default, inspected.PrioritySplice, enginePriority, inspected.MaxTokensSplice, cappedMaxTokens, inspected.CacheSaltSplice, salt is null ? default : salt.Json, inspected.ModelSplice, model);
        }
    }

    // An audio upload: the same edits, as form fields (priority and cache_salt are no fields of
    // vLLM's transcription form: not sent).
    private static void PrepareForm(ProxyRequest request, int? cappedMaxTokens)
    {
        var inspected = request.Inspected;
        var model = request.ModelRewritten ? request.Pool!.ModelUtf8 : null;
        if (inspected.NeedsUsageInjection || cappedMaxTokens is not null || model is not null)
        {
            request.Body!.Apply(inspected.Form, inspected.NeedsUsageInjection, cappedMaxTokens, model);
        }
    }

    // The first token as the client waited for it, from the request's arrival: its wait for a slot
    // (a fleet that lost capacity shows there first), failed attempts and backoffs included.
    private TimeSpan ClientFirstToken(ProxyRequest request, long attemptStarted, TimeSpan firstByte) =>
        time.GetElapsedTime(request.Started, attemptStarted) + firstByte;

    private static AttemptOutcome Outcome(in ForwardResult result) => result.Error switch
    {
        ForwarderError.ClientAborted or ForwarderError.Preempted => AttemptOutcome.ClientAborted, // not the worker's doing
        _ when result.PushedBack => AttemptOutcome.PushedBack,
        ForwarderError.None => result.StatusCode >= 500 ? AttemptOutcome.UpstreamFailed : AttemptOutcome.Succeeded,
        _ => AttemptOutcome.UpstreamFailed,
    };

    // The conversation: the configured header, else the body's `user`; 0 for neither. It is also
    // consistent_hash's key, which falls back to the prompt prefix.
    private static ulong SessionHash(HttpContext context, RoutingModel routing, in InspectedRequest inspected)
    {
        if (routing.HashHeader.Length > 0 && context.Request.Headers.TryGetValue(routing.HashHeader, out var header) && header.Count > 0 && !string.IsNullOrEmpty(header[0]))
        {
            return StableHash.Of(header[0].AsSpan());
        }

        return inspected.UserHash;
    }
}
