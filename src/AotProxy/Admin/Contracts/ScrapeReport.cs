namespace AotProxy.Admin.Contracts;

// A worker's last good /metrics scrape. The gauges are null when there has been none; Fresh is
// false when it is older than three intervals and routing falls back to in-flight counts.
internal sealed record ScrapeReport(
    string Status,
    bool Fresh,
    double? AgeSeconds,
    double? Running,
    double? Waiting,
    double? KvCacheUsage,
    double? PrefixCacheHitRate);
