using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[classes]] entry: a service tier.
internal sealed record ClassConfig
{
    public string Name { get; init; } = "";

    // 0..9, 0 is the most important: ten levels cover P0..P4 and enterprise/premium/free with room.
    public int Priority { get; init; }

    public int Weight { get; init; } = 1;

    public string MaxQueueWait { get; init; } = "30s";

    public double MaxUtilization { get; init; } = 1.0;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
