using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Join the shortest queue: the fewest waiting requests (scraped vllm:num_requests_waiting plus
// what this gateway sent since that scrape); ties go to fewer in flight, then to a random one.
internal sealed class LeastQueuePolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.LeastQueue;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var workers = pool.Workers;
        if (workers.Length == 0)
        {
            return -1;
        }

        var best = -1;
        var bestWaiting = double.MaxValue;
        var bestInFlight = int.MaxValue;
        var start = context.Random.Next(workers.Length);
        for (var i = 0; i < workers.Length; i++)
        {
            var index = (start + i) % workers.Length;
            if (!context.IsCandidate(workers, index))
            {
                continue;
            }

            var worker = workers[index];
            var waiting = worker.Load(context.Routing.StaleAfter).Waiting;
            var inFlight = worker.InFlight;
            if (waiting < bestWaiting || (waiting == bestWaiting && inFlight < bestInFlight))
            {
                best = index;
                bestWaiting = waiting;
                bestInFlight = inFlight;
            }
        }

        return best;
    }
}
