namespace AotProxy.Admin.Contracts;

// GET /api/workers: one worker, everything routing knows about it.
internal sealed record WorkerReport(
    string Name,
    string Url,
    string[] Models,
    bool ModelsDiscovered,
    bool Routable,             // takes new requests right now
    bool Draining,
    string Health,             // unknown | healthy | unhealthy (active checks)
    string Breaker,            // closed | open | half_open
    int InFlight,
    int MaxConcurrency,
    int Slots,                 // admission slots now: max_concurrency, or adapted (scheduler.adaptive_slots)
    int SlotsTaken,            // slots held by requests now (admitted to it, paced, or in flight): at most slots
    int Weight,
    long Requests,
    ScrapeReport Scrape,
    double ErrorRate,          // upstream failures over the last 10 s, 0..1
    double? TtftSeconds,       // averages observed by the gateway; null before the first sample
    double? TimePerOutputTokenSeconds,
    PacingReport? Pacing,      // null: the worker has no rpm/tpm and is not paced
    bool Warming = false);     // joined or recovered, and waits for its warm-up answer: not routable
