namespace AotProxy.Routing;

// One scrape: the outcome, what was read (on a failure, whatever arrived before it, for the log;
// use it only when HasLoad), the HTTP status (0 when no response came) and the body bytes received.
internal readonly record struct ScrapeResult(ScrapeOutcome Outcome, VllmMetrics Metrics, int StatusCode, long BodyBytes)
{
    public bool HasLoad => Outcome is ScrapeOutcome.Ok or ScrapeOutcome.Partial;
}
