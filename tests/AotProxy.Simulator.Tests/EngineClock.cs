namespace AotProxy.Simulator.Tests;

// The engine's manual clock, moved by the engine's own progress: SimulatorEngine.RunAsync sleeps
// out each step's simulated cost on a timer of this clock, and the test advances the clock to that
// timer's due time, no further, and only once the engine has armed it (it is then parked: what the
// test reads of it is settled). A step so ends at exactly its simulated cost, and a step counted is
// a step the engine ran, whatever the engine thread's stalls on a loaded host. Advancing a fixed
// 10 ms per real millisecond instead ran the clock ahead of a stalled engine, which then caught up
// at most SimulatorEngine.MaxLag (100 ms): simulated times came out longer by the stall.
internal sealed class EngineClock : FakeTimeProvider
{
    // A hang guard: a passing run ends as soon as the engine gets there.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly Lock _lock = new();
    private readonly Dictionary<object, DateTimeOffset> _armed = []; // timer -> due, while armed

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (period != Timeout.InfiniteTimeSpan)
        {
            throw new NotSupportedException("the engine's timers are one-shot (Task.Delay)");
        }

        var timer = new OneShot(this);
        Arm(timer, dueTime); // before the base timer, which may fire at once
        timer.Inner = base.CreateTimer(s => { Disarm(timer); callback(s); }, state, dueTime, period);
        return timer;
    }

    // Advances one engine step at a time until the condition holds; false when it does not within
    // the bound. The condition is read while the engine is parked on its next step's timer, or is
    // idle, so it sees a committed step, and the clock stands at that step's end.
    public async Task<bool> StepUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var due = NextDue(); // read first: while a timer is armed, the engine waits for this test
            if (condition())
            {
                return true;
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            if (due is { } at)
            {
                Advance(at - GetUtcNow());
            }
            else
            {
                await Task.Delay(1); // the engine is running a step (or idle): its time, not the clock's
            }
        }
    }

    // Lets the engine run `steps` timed steps and parks it on the next one's timer: the states the
    // test reads then are those the engine's schedule left after the last of them.
    public async Task StepsAsync(int steps)
    {
        for (var i = 0; i <= steps; i++)
        {
            var deadline = DateTime.UtcNow + Bound;
            DateTimeOffset? due;
            while ((due = NextDue()) is null)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the engine did not arm step {i + 1} of {steps} within {Bound}");
                await Task.Delay(1);
            }

            if (i < steps)
            {
                Advance(due.Value - GetUtcNow());
            }
        }
    }

    private DateTimeOffset? NextDue()
    {
        lock (_lock)
        {
            return _armed.Count == 0 ? null : _armed.Values.Min();
        }
    }

    private void Arm(object timer, TimeSpan dueTime)
    {
        lock (_lock)
        {
            if (dueTime == Timeout.InfiniteTimeSpan)
            {
                _armed.Remove(timer);
            }
            else
            {
                _armed[timer] = GetUtcNow() + dueTime;
            }
        }
    }

    private void Disarm(object timer)
    {
        lock (_lock)
        {
            _armed.Remove(timer);
        }
    }

    private sealed class OneShot(EngineClock clock) : ITimer
    {
        public ITimer Inner { get; set; } = null!;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            clock.Arm(this, dueTime);
            return Inner.Change(dueTime, period);
        }

        public void Dispose()
        {
            clock.Disarm(this);
            Inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            clock.Disarm(this);
            return Inner.DisposeAsync();
        }
    }
}
