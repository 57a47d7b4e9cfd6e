namespace AotProxy.Cluster;

// The shared RPM window's answer: taken in Second (Redis's clock, in Unix seconds, what a
// give-back names), refused with how long until the oldest counted request leaves the window, or
// no answer (StoreDown).
internal readonly record struct SharedTake(SharedTakeOutcome Outcome, long Second, TimeSpan RetryAfter)
{
    public static SharedTake StoreDown { get; } = new(SharedTakeOutcome.StoreDown, 0, TimeSpan.Zero);

    public bool Taken => Outcome == SharedTakeOutcome.Taken;
}
