namespace AotProxy.Tests.Admission;

// ManualTimeProvider's clock, keeping every timer it hands out: a test can then fire one at a
// moment the clock would not (a late fire from a previous use) and count how many were made.
internal sealed class TimerCapturingTimeProvider(ManualTimeProvider inner) : TimeProvider
{
    public List<ManualTimer> Timers { get; } = [];

    public override long TimestampFrequency => inner.TimestampFrequency;

    public override long GetTimestamp() => inner.GetTimestamp();

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = (ManualTimer)inner.CreateTimer(callback, state, dueTime, period);
        lock (Timers)
        {
            Timers.Add(timer);
        }

        return timer;
    }
}
