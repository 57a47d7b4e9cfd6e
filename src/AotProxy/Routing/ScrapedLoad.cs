namespace AotProxy.Routing;

// One good /metrics scrape of a worker, and when it arrived (a TimeProvider timestamp).
internal sealed record ScrapedLoad(VllmMetrics Metrics, long At);
