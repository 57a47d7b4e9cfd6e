using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Smooth weighted round robin (nginx): worker weights 5,1,1 interleave as a,a,b,a,c,a,a.
internal sealed class WeightedRoundRobinPolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.WeightedRoundRobin;

    public int Pick(WorkerPool pool, in RouteContext context)
    {
        var schedule = pool.WeightedSchedule;
        var start = pool.NextCursor();
        for (var i = 0; i < schedule.Length; i++)
        {
            var index = schedule[(int)((start + (uint)i) % (uint)schedule.Length)];
            if (context.IsCandidate(pool.Workers, index))
            {
                return index;
            }
        }

        return -1;
    }
}
