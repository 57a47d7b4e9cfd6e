namespace AotProxy.Testing;

// Pins the wall clock (`created` fields, config load times) and leaves timers and timestamps
// real: two identical requests to a simulator then produce identical bytes while its engine runs
// in real time. FakeTimeProvider cannot stand in here: its timers fire only when a test advances
// its clock, and the simulator's engine steps on timers.
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
