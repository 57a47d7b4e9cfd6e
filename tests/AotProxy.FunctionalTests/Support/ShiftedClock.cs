namespace AotProxy.FunctionalTests.Support;

// The real clock moved by Offset: a test jumps over an expiry or into another hour at once,
// while timers (health checks, the simulator's engine) keep running in real time, which
// FakeTimeProvider's timers would not.
internal sealed class ShiftedClock : TimeProvider
{
    private long _offsetTicks;

    public TimeSpan Offset
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
        set => Interlocked.Exchange(ref _offsetTicks, value.Ticks);
    }

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Offset;
}
