namespace AotProxy.Admin.Contracts;

// A class's protection in one model pool: shed now, and since when; the pool's error rate and TTFT
// ratio as last judged (the served classes' own ratios weighted by their first tokens; 0: too few
// samples, or no baseline yet), and the served classes' baselines weighted the same way; this
// class's own TTFT ratio (0: shed, too few, no baseline) and its own learned baseline; the share of
// its new requests admitted (0 shed, 0.25 then 0.5 while it comes back half-open, 1).
internal sealed record ProtectionReport(
    bool Shedding, double ErrorRate, double TtftRatio, DateTimeOffset? Since, double BaselineTtftSeconds, double ClassTtftRatio, double ClassBaselineTtftSeconds, double AdmitFraction);
