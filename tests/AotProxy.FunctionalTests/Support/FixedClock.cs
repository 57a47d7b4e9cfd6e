namespace AotProxy.FunctionalTests.Support;

// Wall-clock time frozen (for the `created` field), timers real: two identical requests then
// produce identical bytes, which is what the byte-for-byte tests compare.
internal sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
