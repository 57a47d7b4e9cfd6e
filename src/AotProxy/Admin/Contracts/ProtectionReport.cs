namespace AotProxy.Admin.Contracts;

// A class's protection in one model pool: shed now, and since when; the pool's error rate and TTFT
// over its baseline as last judged (0: too few samples, or no baseline yet), and the baseline.
internal sealed record ProtectionReport(bool Shedding, double ErrorRate, double TtftRatio, DateTimeOffset? Since, double BaselineTtftSeconds);
