namespace AotProxy.Testing;

internal sealed class ManualTimer(ManualTimeProvider provider, TimerCallback callback, object? state) : ITimer
{
    internal long DueAt { get; set; }

    internal long Period { get; set; }

    public bool Change(TimeSpan dueTime, TimeSpan period)
    {
        provider.Schedule(this, dueTime, period);
        return true;
    }

    internal void Fire() => callback(state);

    public void Dispose() => provider.Schedule(this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
