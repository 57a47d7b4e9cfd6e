using AotProxy.Load.Recording;

namespace AotProxy.Load.Reporting;

internal sealed record ScenarioReport(
    string Name,
    long Requests,
    long Ok,
    SortedDictionary<string, long> Errors,
    SortedDictionary<string, long> StatusCodes,
    double AchievedRps,
    long LateSends,
    long MaxScheduleLagUs,
    HistogramSummary LatencyUs,
    HistogramSummary TtftUs,
    HistogramSummary ItlUs,
    TokenCounts Tokens,
    IReadOnlyList<ThresholdResult> Thresholds);
