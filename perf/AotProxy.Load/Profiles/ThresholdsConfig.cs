using Tomlyn.Serialization;

namespace AotProxy.Load.Profiles;

// [thresholds]: each one set is checked against the whole scenario; unset ones are not checked.
internal sealed record ThresholdsConfig
{
    public string P99Latency { get; init; } = "";

    public string P99Ttft { get; init; } = "";

    // Errors (dropped included) over all requests, 0..1. Negative: not checked.
    public double MaxErrorRate { get; init; } = -1;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
