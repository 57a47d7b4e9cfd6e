using AotProxy.Limits;

namespace AotProxy.Cluster;

// StoreDownPolicy's answer: the outcome, and for a refusal the limit that refused (for a budget,
// which one and what this replica's share of it had left) and how long until the client may
// retry (Refused: until this replica's share has room, zero for a budget; Closed: one heartbeat,
// when the store may be back).
internal readonly record struct StoreDownVerdict(StoreDownOutcome Outcome, TimeSpan RetryAfter, LimitRefusal Refusal = LimitRefusal.None, BudgetKind Budget = BudgetKind.None, long Left = 0)
{
    public static StoreDownVerdict Admitted { get; } = new(StoreDownOutcome.Admitted, TimeSpan.Zero);

    // Whole seconds for Retry-After, at least 1.
    public int RetryAfterSeconds => Math.Max(1, (int)Math.Ceiling(RetryAfter.TotalSeconds));
}
