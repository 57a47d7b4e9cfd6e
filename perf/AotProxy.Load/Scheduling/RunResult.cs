using AotProxy.Load.Profiles;
using AotProxy.Load.Recording;

namespace AotProxy.Load.Scheduling;

// ByMix[i] is what [[mix]] entry i saw; Total is their sum.
internal sealed record RunResult(
    LoadProfile Profile,
    Uri Target,
    DateTimeOffset StartedAt,
    double DurationSeconds,
    IReadOnlyList<ScenarioRecorder> ByMix,
    ScenarioRecorder Total);
