using Tomlyn.Serialization;

namespace AotProxy.Load.Profiles;

// A load profile as written in perf/profiles/*.toml, before validation. Tomlyn fills it through
// the source-generated ProfileTomlContext; ProfileValidator turns it into a LoadProfile. Every
// table keeps a [TomlExtensionData] catch-all because Tomlyn does not reject unmapped keys, and a
// typo ("duraton") must not silently run a different load.
internal sealed record ProfileConfig
{
    public ScenarioConfig Scenario { get; init; } = new();

    public IReadOnlyList<LoadStepConfig> Load { get; init; } = [];

    public IReadOnlyList<MixConfig> Mix { get; init; } = [];

    public ThresholdsConfig Thresholds { get; init; } = new();

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
