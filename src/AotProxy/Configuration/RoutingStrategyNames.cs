using System.Collections.Immutable;

namespace AotProxy.Configuration;

// The values `routing.strategy` accepts (SPEC: Config). Balancers register under these names.
internal static class RoutingStrategyNames
{
    public const string RoundRobin = "round_robin";
    public const string WeightedRoundRobin = "weighted_round_robin";
    public const string LeastQueue = "least_queue";
    public const string LeastConnections = "least_connections";
    public const string P2cKv = "p2c_kv";
    public const string ConsistentHash = "consistent_hash";
    public const string Adaptive = "adaptive";

    public static ImmutableArray<string> All { get; } =
        [RoundRobin, WeightedRoundRobin, LeastQueue, LeastConnections, P2cKv, ConsistentHash, Adaptive];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
