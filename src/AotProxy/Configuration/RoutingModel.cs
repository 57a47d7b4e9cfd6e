namespace AotProxy.Configuration;

internal sealed record RoutingModel(
    string Strategy,
    TimeSpan MetricsInterval,
    TimeSpan MetricsTimeout,
    ScoreWeights Weights,
    double PrefixBonus,
    TimeSpan PrefixTtl,
    double AffinityMaxGap,
    double AffinityMaxRatio,
    string HashHeader,      // "": no header key
    int VirtualNodes,
    double HashLoadFactor,
    double Epsilon,
    double LearningRate,
    bool Warmup = false,    // [routing] warmup (the file's default is on; a snapshot built in code has it off)
    bool SessionAffinity = true) // p2c_kv keeps a conversation on its worker while that worker is not saturated
{
    // [routing] auto_preference: the served models model "auto" takes first when they fit, in order.
    public System.Collections.Immutable.ImmutableArray<string> AutoPreference { get; init; } = [];

    // Gauges older than this are stale: three missed scrapes, not one slow one.
    public TimeSpan StaleAfter => MetricsInterval * 3;
}
