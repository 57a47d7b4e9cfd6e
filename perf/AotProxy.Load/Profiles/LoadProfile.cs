using System.Collections.Immutable;

namespace AotProxy.Load.Profiles;

// A validated profile: what ProfileLoader returns and LoadRunner runs.
internal sealed record LoadProfile(
    string Name,
    string Scenario,
    string Description,
    Uri Target,
    string Path,
    string Model,
    string ApiKey,
    TimeSpan Timeout,
    int MaxInFlight,
    ImmutableArray<LoadStep> Steps,
    ImmutableArray<MixEntry> Mix,
    Thresholds Thresholds);
