namespace AotProxy.Admin.Contracts;

// GET /api/workers: a paced worker's upstream limits, what its pacer did, and its last 60 s.
internal sealed record PacingReport(
    long Rpm,                  // as configured; 0: no request limit
    long Tpm,
    long RequestLimit,         // what the pacer keeps to: rpm - safety_margin
    long TokenLimit,           // tpm less safety_margin percent
    double MaxWaitSeconds,
    long Requests,             // let go upstream, at once or after waiting
    long Waits,                // had to wait, whatever became of them
    double WaitSeconds,        // total time spent waiting
    long Timeouts,             // no turn within max_wait: 503
    int Waiting,               // waiting right now
    int WindowRequests,        // started in the last 60 s
    long WindowTokens);        // reserved in the last 60 s
