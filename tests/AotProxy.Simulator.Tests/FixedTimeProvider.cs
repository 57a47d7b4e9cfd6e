namespace AotProxy.Simulator.Tests;

// Pins the wall clock (the `created` field) and leaves timers and timestamps real.
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
