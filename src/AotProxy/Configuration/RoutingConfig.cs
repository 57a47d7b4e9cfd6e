using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [routing]
internal sealed record RoutingConfig
{
    public string Strategy { get; init; } = RoutingStrategyNames.P2cKv;

    // 500 ms: vLLM's gauges move per scheduler step; scraping faster costs the worker more than it helps.
    public string MetricsInterval { get; init; } = "500ms";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
