namespace AotProxy.Admin.Contracts;

// GET /api/circuit-breaker/stats: one worker's breaker.
internal sealed record BreakerReport(
    string Name,
    string State,              // closed | open | half_open
    int ConsecutiveFailures,
    long Failures,             // all failures counted since the worker was added
    long TimesOpened,
    DateTimeOffset? LastTransition);
