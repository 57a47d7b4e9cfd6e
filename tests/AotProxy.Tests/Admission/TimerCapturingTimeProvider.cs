namespace AotProxy.Tests.Admission;

// A FakeTimeProvider's clock and timers, keeping every timer it hands out with its callback: a
// test can then fire one at a moment the clock would not (a late fire from a previous use) and
// count how many were made. FakeTimeProvider fires its timers only as its clock passes them.
internal sealed class TimerCapturingTimeProvider(FakeTimeProvider inner) : TimeProvider
{
    public List<CapturedTimer> Timers { get; } = [];

    public override long TimestampFrequency => inner.TimestampFrequency;

    public override long GetTimestamp() => inner.GetTimestamp();

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new CapturedTimer(inner.CreateTimer(callback, state, dueTime, period), callback, state);
        lock (Timers)
        {
            Timers.Add(timer);
        }

        return timer;
    }

    internal sealed class CapturedTimer(ITimer timer, TimerCallback callback, object? state) : ITimer
    {
        // Out of turn: what the timer does when it fires, whatever the clock says.
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => timer.Change(dueTime, period);

        public void Dispose() => timer.Dispose();

        public ValueTask DisposeAsync() => timer.DisposeAsync();
    }
}
