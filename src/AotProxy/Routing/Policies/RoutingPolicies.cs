using System.Collections.Frozen;
using AotProxy.Configuration;

namespace AotProxy.Routing.Policies;

// Every balancer, by its `routing.strategy` name, looked up once per request in a frozen
// dictionary. Index is the strategy's position in RoutingStrategyNames.All (decision counters).
internal static class RoutingPolicies
{
    private static readonly FrozenDictionary<string, (IRoutingPolicy Policy, int Index)> ByName = Build();

    public static (IRoutingPolicy Policy, int Index) Get(string strategy) => ByName[strategy];

    private static FrozenDictionary<string, (IRoutingPolicy Policy, int Index)> Build()
    {
        var leastConnections = new LeastConnectionsPolicy();
        IRoutingPolicy[] policies =
        [
            new RoundRobinPolicy(),
            new WeightedRoundRobinPolicy(),
            new LeastQueuePolicy(),
            leastConnections,
            new P2cKvPolicy(),
            new ConsistentHashPolicy(leastConnections),
            new AdaptivePolicy(),
        ];
        return policies.ToFrozenDictionary(
            p => p.Name,
            p => (p, RoutingStrategyNames.All.IndexOf(p.Name)),
            StringComparer.Ordinal);
    }
}
