using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Each candidate in turn; a worker that may not take the request is skipped.
internal sealed class RoundRobinPolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.RoundRobin;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var workers = pool.Workers;
        var start = pool.NextCursor();
        for (var i = 0; i < workers.Length; i++)
        {
            var index = (int)((start + (uint)i) % (uint)workers.Length);
            if (context.IsCandidate(workers, index))
            {
                return index;
            }
        }

        return -1;
    }
}
