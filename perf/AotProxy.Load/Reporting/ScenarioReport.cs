using AotProxy.Load.Recording;

namespace AotProxy.Load.Reporting;

// ErrorRate: errors (dropped included) / requests. OutputTokensPerS: completion tokens of the
// successful requests per second of the run (schedule start -> last response), as AchievedRps.
internal sealed record ScenarioReport(
    string Name,
    long Requests,
    long Ok,
    SortedDictionary<string, long> Errors,
    SortedDictionary<string, long> StatusCodes,
    double AchievedRps,
    double ErrorRate,
    double OutputTokensPerS,
    long LateSends,
    long MaxScheduleLagUs,
    HistogramSummary LatencyUs,
    HistogramSummary TtftUs,
    HistogramSummary ItlUs,
    TokenCounts Tokens,
    IReadOnlyList<ThresholdResult> Thresholds);
