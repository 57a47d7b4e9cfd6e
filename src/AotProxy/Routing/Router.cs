using AotProxy.Configuration;
using AotProxy.Routing.Policies;
using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

// The route stage: the snapshot's strategy picks a candidate, the worker's breaker grants a
// permit (a half-open breaker lets only a few trials through), and the attempt's outcome flows
// back into the worker's state: breaker, error window, latency averages. Health and breakers
// count only the upstream's failures; a client that went away is never the worker's fault.
internal sealed class Router(TimeProvider time, Random random, ILogger logger)
{
    public WorkerState? Pick(WorkerPool pool, GatewaySnapshot snapshot, RouteRequest request, ref ulong tried, out BreakerPermit permit)
    {
        var (policy, strategy) = RoutingPolicies.Get(snapshot.Routing.Strategy);
        var context = new RouteContext(snapshot.Routing, snapshot.CircuitBreaker, request, time, random, tried);
        for (var attempt = 0; attempt < pool.Workers.Length; attempt++)
        {
            var index = policy.Pick(pool, context);
            if (index < 0)
            {
                break;
            }

            var worker = pool.Workers[index];
            context = context.Excluding(index);
            var before = worker.Breaker.State;
            permit = worker.Breaker.TryAcquire(snapshot.CircuitBreaker);
            LogTransition(worker, before);
            if (permit == BreakerPermit.Denied)
            {
                continue; // another request took the last half-open trial; try the next candidate
            }

            tried = context.Excluded;
            worker.CountDecision(strategy);
            if (request.PrefixHash != 0)
            {
                worker.Prefixes.Record(request.PrefixHash, time.GetTimestamp());
            }

            return worker;
        }

        permit = BreakerPermit.Denied;
        return null;
    }

    // Whether a worker this request has not tried could take it (a retry has somewhere to go).
    public static bool HasCandidate(WorkerPool pool, GatewaySnapshot snapshot, ulong tried)
    {
        var context = new RouteContext(snapshot.Routing, snapshot.CircuitBreaker, default, TimeProvider.System, Random.Shared, tried);
        for (var i = 0; i < pool.Workers.Length; i++)
        {
            if (context.IsCandidate(pool.Workers, i))
            {
                return true;
            }
        }

        return false;
    }

    // completionTokens: from the usage, 0 when unknown (then no time-per-token sample).
    public void Complete(WorkerState worker, BreakerPermit permit, AttemptOutcome outcome, TimeSpan? firstByte, TimeSpan duration, long completionTokens, GatewaySnapshot snapshot)
    {
        var before = worker.Breaker.State;
        Record(worker, permit, outcome, firstByte, duration, completionTokens, snapshot);
        LogTransition(worker, before);
    }

    private void LogTransition(WorkerState worker, BreakerState before)
    {
        var after = worker.Breaker.State;
        if (after != before)
        {
            RoutingLog.BreakerChanged(logger, worker.Name, after);
        }
    }

    private void Record(WorkerState worker, BreakerPermit permit, AttemptOutcome outcome, TimeSpan? firstByte, TimeSpan duration, long completionTokens, GatewaySnapshot snapshot)
    {
        var breaker = snapshot.CircuitBreaker;
        var second = time.GetTimestamp() / time.TimestampFrequency;
        switch (outcome)
        {
            case AttemptOutcome.ClientAborted:
                worker.Breaker.OnAbandoned(permit);
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
