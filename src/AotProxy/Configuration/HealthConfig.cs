using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [health]: active checks, GET {url}{path} on every worker.
internal sealed record HealthConfig
{
    // 5 s with 3 failures: a dead worker leaves rotation within about 15 s; breakers react faster.
    public string Interval { get; init; } = "5s";

    public string Timeout { get; init; } = "2s";

    public string Path { get; init; } = "/health";

    public int UnhealthyThreshold { get; init; } = 3;

    public int HealthyThreshold { get; init; } = 2;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
