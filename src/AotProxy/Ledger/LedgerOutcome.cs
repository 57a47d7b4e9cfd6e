using AotProxy.Admission;

namespace AotProxy.Ledger;

// The `outcome` column: how admission ended (llm_gateway_admissions_total's outcome names), or
// the stage that stopped the request before it. Strings, not an enum: the row carries a constant.
internal static class LedgerOutcome
{
    public const string Admitted = "admitted";
    public const string Granted = "granted";
    public const string QueueFull = "queue_full";
    public const string TimedOut = "timed_out";
    public const string CapacityGuard = "capacity_guard";
    public const string Shed = "shed";
    public const string NoCapacity = "no_capacity";
    public const string Cancelled = "cancelled";

    // Admitted, but no worker could take it when it came to routing (503).
    public const string NoWorker = "no_worker";

    // Admitted, but its worker's upstream pacing gave it no turn within max_wait (503).
    public const string PacingTimeout = "pacing_timeout";

    // 429 from a tenant limit (rpm, tpm, max_in_flight).
    public const string RateLimited = "rate_limited";

    // 429 from a used-up budget.
    public const string InsufficientQuota = "insufficient_quota";

    // 503 for a limited tenant while the cluster store is down, with store_down = "closed".
    public const string LimitStoreDown = "limit_store_down";

    // Admitted, and the gateway stopped (a crash, a kill -9, a power loss) before it ended: the
    // row its admission journaled, recorded at the next start. Usage: the prompt estimate, no
    // completion (what was relayed lived only in the dead process), estimated; status 500.
    public const string Interrupted = "interrupted";

    // Answered from the exact response cache (Caching/): no admission, no worker.
    public const string CacheHit = "cache_hit";

    // Stopped before the limit stage: a body too large (413), invalid (400), a model not allowed
    // (403) or unknown (404), or a client gone while sending its body (499).
    public const string Rejected = "rejected";

    public static string Of(AdmissionDecision decision) => decision switch
    {
        AdmissionDecision.Admitted => Admitted,
        AdmissionDecision.Granted => Granted,
        AdmissionDecision.QueueFull => QueueFull,
        AdmissionDecision.TimedOut => TimedOut,
        AdmissionDecision.CapacityGuard => CapacityGuard,
        AdmissionDecision.Shed => Shed,
        AdmissionDecision.NoCapacity => NoCapacity,
        _ => Cancelled,
    };
}
