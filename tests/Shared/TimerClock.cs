namespace AotProxy.Testing;

// A manual clock moved by the waits of the code under test: the test advances it to the due time
// of the earliest timer that code has armed, no further, and only once it is armed (the code is
// then parked on it: what the test reads of it is settled). Advancing a fixed step per few real
// milliseconds instead runs the clock ahead of code that a loaded host stalls, and a cap on the
// steps then fails a test that only ran late.
internal sealed class TimerClock : FakeTimeProvider
{
    // A hang guard: a passing run ends as soon as the code gets there.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly Lock _lock = new();
    private readonly Dictionary<Tracked, DateTimeOffset> _armed = []; // timer -> due, while armed

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new Tracked(this);
        Arm(timer, dueTime, period); // before the base timer, which may fire at once
        timer.Inner = base.CreateTimer(s => { Fired(timer); callback(s); }, state, dueTime, period);
        return timer;
    }

    // How many timers are armed to fire within `horizon` of now: a wait that ended leaves none of
    // its short timers behind.
    public int ArmedWithin(TimeSpan horizon)
    {
        lock (_lock)
        {
            var limit = GetUtcNow() + horizon;
            return _armed.Values.Count(due => due <= limit);
        }
    }

    // Steps to the timers due within `horizon` of now (any, without one), one at a time, until the
    // condition holds; false when it does not within the bound. A timer due later (a 30 s queue wait
    // behind 100 ms polls) is never reached. The condition is read while the code is parked on a
    // timer, or runs.
    public async Task<bool> StepUntilAsync(Func<bool> condition, TimeSpan? horizon = null)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var due = NextDue(horizon); // read first: while a timer is armed, the code waits for this test
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
                await Task.Delay(1); // the code is running: its time, not the clock's
            }
        }
    }

    private DateTimeOffset? NextDue(TimeSpan? horizon)
    {
        lock (_lock)
        {
            var limit = horizon is { } h ? GetUtcNow() + h : DateTimeOffset.MaxValue;
            DateTimeOffset? next = null;
            foreach (var due in _armed.Values)
            {
                if (due <= limit && (next is null || due < next))
                {
                    next = due;
                }
            }

            return next;
        }
    }

    private void Arm(Tracked timer, TimeSpan dueTime, TimeSpan period)
    {
        lock (_lock)
        {
            timer.Period = period;
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

    private void Fired(Tracked timer)
    {
        lock (_lock)
        {
            if (timer.Period == Timeout.InfiniteTimeSpan || timer.Period == TimeSpan.Zero)
            {
                _armed.Remove(timer);
            }
            else
            {
                _armed[timer] = GetUtcNow() + timer.Period;
            }
        }
    }

    private void Disarm(Tracked timer)
    {
        lock (_lock)
        {
            _armed.Remove(timer);
        }
    }

    private sealed class Tracked(TimerClock clock) : ITimer
    {
        public ITimer Inner { get; set; } = null!;

        public TimeSpan Period { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            clock.Arm(this, dueTime, period);
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
