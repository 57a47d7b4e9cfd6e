using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Epsilon-greedy on observed latency: with probability `epsilon` a random candidate (so every
// worker's estimate stays fresh), otherwise the lowest expected wait, the worker's TTFT average
// (learning_rate-weighted) times the requests it would be sharing with this one. A worker with
// no sample yet is tried first.
internal sealed class AdaptivePolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.Adaptive;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var workers = pool.Workers;
        var candidates = workers.Length <= WorkerPool.StackCandidates ? stackalloc int[workers.Length] : new int[workers.Length];
        var count = context.Candidates(workers, candidates);
        if (count <= 1)
        {
            return count == 0 ? -1 : candidates[0];
        }

        if (context.Random.NextDouble() < context.Routing.Epsilon)
        {
            return candidates[context.Random.Next(count)];
        }

        var best = -1;
        var bestExpected = double.MaxValue;
        var start = context.Random.Next(count);
        for (var i = 0; i < count; i++)
        {
            var index = candidates[(start + i) % count];
            var worker = workers[index];
            var expected = worker.Ttft.Seconds * (1 + worker.InFlight);
            if (expected < bestExpected)
            {
                best = index;
                bestExpected = expected;
            }
        }

        return best;
    }
}
