using AotProxy.Configuration;
using AotProxy.Routing.Policies;
using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

// The route stage: the snapshot's strategy picks a candidate with a free slot, the request's
// slot moves there, the worker's breaker grants a permit (a half-open breaker lets only a few
// trials through), and the attempt's outcome flows back into the worker's state: breaker, error
// window, latency averages. Health and breakers count only the upstream's failures; a client
// that went away is never the worker's fault.
internal sealed class Router(TimeProvider time, Random random, ILogger logger)
{
    // Picks the worker for one attempt and moves the request's slot onto it (`slot`: the slot it
    // holds, admission's, or none). A candidate is routable, not tried yet, and has a free slot or
    // holds this request's one; a worker at its max_concurrency is never picked. permit: the
    // breaker's, for the attempt; the slot stays held until the attempt ends.
    public WorkerState? Pick(WorkerPool pool, GatewaySnapshot snapshot, RouteRequest request, ref ulong tried, ref WorkerSlot slot, out BreakerPermit permit)
    {
        var (policy, strategy) = RoutingPolicies.Get(snapshot.Routing.Strategy);
        var context = new RouteContext(snapshot.Routing, snapshot.CircuitBreaker, snapshot.Scheduler, request, time, random, tried, slot.Worker);
        for (var attempt = 0; attempt < pool.Workers.Length; attempt++)
        {
            var index = policy.Pick(pool, context);
            if (index < 0)
            {
                break;
            }

            var worker = pool.Workers[index];
            context = context.Excluding(index);
            if (!ReferenceEquals(worker, slot.Worker))
            {
                if (!TryTakeSlot(worker, snapshot, out var taken))
                {
                    continue; // its last slot or half-open trial went to another request; try the next candidate
                }

                slot.Release();
                slot = taken;
            }

            permit = slot.TakePermit();
            tried = context.Excluded;
            worker.CountDecision(strategy);
            SessionAffinity.OnPicked(pool, index, request, snapshot.Routing, time);
            LoraPlacement.OnPicked(pool, index, time);
            return worker;
        }

        permit = BreakerPermit.Denied;
        return null;
    }

    // [cluster]: a request whose want on the pool was granted another worker's slot fleet-wide
    // (SharedWorkerSlots.AcquireAsync) moves there from the worker Pick chose, as if Pick had
    // chosen it: the slot and permit move (the old worker's go back), the decision is counted on
    // the new worker instead, tried names it instead, and session and adapter placement follow it.
    // False when its breaker takes nothing now (the request keeps what it held).
    public bool TryMove(WorkerPool pool, GatewaySnapshot snapshot, RouteRequest request, WorkerState to, ref ulong tried, ref WorkerSlot slot, ref BreakerPermit permit)
    {
        var index = Array.IndexOf(pool.Workers, to);
        if (index < 0 || slot.Worker is not { } from || !to.TryTakeGrantedSlot(snapshot, out var taken))
        {
            return false;
        }

        from.Breaker.OnAbandoned(permit);
        slot.Release();
        slot = taken;
        permit = slot.TakePermit();
        var strategy = RoutingPolicies.Get(snapshot.Routing.Strategy).Index;
        from.CountDecision(strategy, -1);
        to.CountDecision(strategy);
        tried = (tried & ~Bit(Array.IndexOf(pool.Workers, from))) | Bit(index);
        SessionAffinity.OnPicked(pool, index, request, snapshot.Routing, time);
        LoraPlacement.OnPicked(pool, index, time);
        return true;
    }

    // A worker's bit in `tried` (RouteContext.Excluding: past 64 workers, none).
    private static ulong Bit(int index) => index is >= 0 and < 64 ? 1UL << index : 0;

    // Admission's slot: one on the routable worker with the most room, else on any that has one
    // (another request took that room meanwhile). False: no worker has a free slot, and admission
    // grants nothing. Pick may later move the slot to the worker the strategy prefers.
    public bool TryReserve(WorkerPool pool, GatewaySnapshot snapshot, out WorkerSlot slot, bool beyondFleet = false)
    {
        var workers = pool.Workers;
        var best = -1;
        var bestRoom = 0;
        for (var i = 0; i < workers.Length; i++)
        {
            var room = workers[i].Capacity(snapshot) - workers[i].SlotsTaken; // Capacity: 0 unless routable
            if (room > bestRoom)
            {
                best = i;
                bestRoom = room;
            }
        }

        if (best >= 0 && TryTakeSlot(workers[best], snapshot, out slot, beyondFleet))
        {
            return true;
        }

        for (var i = 0; i < workers.Length; i++)
        {
            if (i != best && workers[i].IsRoutable(snapshot.CircuitBreaker) && TryTakeSlot(workers[i], snapshot, out slot, beyondFleet))
            {
                return true;
            }
        }

        slot = default;
        return false;
    }

    // Whether a worker this request has not tried could take it (a retry has somewhere to go).
    public bool HasCandidate(WorkerPool pool, GatewaySnapshot snapshot, ulong tried)
    {
        var context = new RouteContext(snapshot.Routing, snapshot.CircuitBreaker, snapshot.Scheduler, default, time, random, tried);
        for (var i = 0; i < pool.Workers.Length; i++)
        {
            if (context.IsCandidate(pool.Workers, i))
            {
                return true;
            }
        }

        return false;
    }

    // completionTokens: from the usage, 0 when unknown (then no time-per-token sample). status and
    // retryAfter: a push-back's (its retry-after is a hint for this worker only, 0: none).
    public void Complete(WorkerState worker, BreakerPermit permit, AttemptOutcome outcome, TimeSpan? firstByte, TimeSpan duration, long completionTokens, GatewaySnapshot snapshot, int status = 0, TimeSpan retryAfter = default)
    {
        var before = worker.Breaker.State;
        Record(worker, permit, outcome, firstByte, duration, completionTokens, snapshot, status, retryAfter);
        LogTransition(worker, before);
    }

    // Taking a slot may move an open breaker whose open_timeout has passed to half-open.
    private bool TryTakeSlot(WorkerState worker, GatewaySnapshot snapshot, out WorkerSlot slot, bool beyondFleet = false)
    {
        var before = worker.Breaker.State;
        var taken = worker.TryTakeSlot(snapshot, out slot, beyondFleet);
        LogTransition(worker, before);
        return taken;
    }

    private void LogTransition(WorkerState worker, BreakerState before)
    {
        var after = worker.Breaker.State;
        if (after != before)
        {
            RoutingLog.BreakerChanged(logger, worker.Name, after);
        }
    }

    private void Record(WorkerState worker, BreakerPermit permit, AttemptOutcome outcome, TimeSpan? firstByte, TimeSpan duration, long completionTokens, GatewaySnapshot snapshot, int status, TimeSpan retryAfter)
    {
        var breaker = snapshot.CircuitBreaker;
        var second = time.GetTimestamp() / time.TimestampFrequency;
        switch (outcome)
        {
            case AttemptOutcome.ClientAborted:
                worker.Breaker.OnAbandoned(permit);
                return;
            case AttemptOutcome.PushedBack:
                // A full worker is a healthy one: no breaker failure, no error window; a half-open
                // trial's permit comes back. It looks full to the strategies for a while.
                worker.Breaker.OnAbandoned(permit);
                worker.OnPushedBack(status, retryAfter);
                return;
            case AttemptOutcome.UpstreamFailed:
                worker.Errors.Record(flagged: true, second);
                worker.Breaker.OnFailure(permit, breaker);
                return;
        }

        worker.Errors.Record(flagged: false, second);
        if (firstByte is { } ttft)
        {
            var rate = snapshot.Routing.LearningRate;
            worker.Ttft.Add(ttft.TotalSeconds, rate);
            if (completionTokens > 1 && duration > ttft)
            {
                worker.TimePerOutputToken.Add((duration - ttft).TotalSeconds / (completionTokens - 1), rate);
            }

            if (ttft > breaker.SlowCallThreshold)
            {
                worker.Breaker.OnFailure(permit, breaker); // answered, but too slowly to count as healthy
                return;
            }
        }

        worker.Breaker.OnSuccess(permit, breaker);
    }
}
