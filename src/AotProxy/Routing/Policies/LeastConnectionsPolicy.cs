using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// The candidate with the fewest requests in flight from this gateway.
internal sealed class LeastConnectionsPolicy : IRoutingPolicy
{
    public string Name => RoutingStrategyNames.LeastConnections;

    public int Pick(WorkerPool pool, in RouteContext context) =>
        LowestScan.Pick(pool, context, static (pool, index, _) => pool.Workers[index].InFlight);
}
