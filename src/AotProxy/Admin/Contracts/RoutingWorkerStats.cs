namespace AotProxy.Admin.Contracts;

// Per worker: its decisions, and what p2c_kv's estimate reads (issue 19): the cache model's
// capacity, what it believes resident and its correction (0.1..1); the token load; the measured
// prefill rate (the 20,000 default until measured); and the extra backlog it may carry over the
// least backlogged worker before a hit of its mean size no longer pays.
internal sealed record RoutingWorkerStats(
    string Name,
    long Decisions,
    Dictionary<string, long> ByStrategy,
    long CacheCapacityTokens,
    long CacheTokens,
    double CacheCorrection,
    long PrefillBacklogTokens,
    int Decoding,
    double PrefillTokensPerSecond,
    bool PrefillRateMeasured,
    long StickyThresholdTokens);
