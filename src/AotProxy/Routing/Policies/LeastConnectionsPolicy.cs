using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// The candidate with the fewest requests in flight from this gateway. The scan starts at a random
// worker, so ties do not all land on the first one.
internal sealed class LeastConnectionsPolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.LeastConnections;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var workers = pool.Workers;
        if (workers.Length == 0)
        {
            return -1;
        }

        var best = -1;
        var bestInFlight = int.MaxValue;
        var start = context.Random.Next(workers.Length);
        for (var i = 0; i < workers.Length; i++)
        {
            var index = (start + i) % workers.Length;
            if (!context.IsCandidate(workers, index))
            {
                continue;
            }

            var inFlight = workers[index].InFlight;
            if (inFlight < bestInFlight)
            {
                best = index;
                bestInFlight = inFlight;
            }
        }

        return best;
    }
}
