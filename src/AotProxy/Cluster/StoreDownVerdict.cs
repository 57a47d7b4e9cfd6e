namespace AotProxy.Cluster;

// StoreDownPolicy's answer: the outcome, and for a refusal how long until the client may retry
// (Refused: until this replica's share has room; Closed: one heartbeat, when the store may be back).
internal readonly record struct StoreDownVerdict(StoreDownOutcome Outcome, TimeSpan RetryAfter)
{
    public static StoreDownVerdict Admitted { get; } = new(StoreDownOutcome.Admitted, TimeSpan.Zero);

    // Whole seconds for Retry-After, at least 1.
    public int RetryAfterSeconds => Math.Max(1, (int)Math.Ceiling(RetryAfter.TotalSeconds));
}
