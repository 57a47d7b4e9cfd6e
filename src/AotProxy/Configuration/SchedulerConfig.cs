using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [scheduler]
internal sealed record SchedulerConfig
{
    public string Policy { get; init; } = SchedulerPolicyNames.FairShare;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
