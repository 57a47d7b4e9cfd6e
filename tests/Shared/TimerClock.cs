namespace AotProxy.Testing;

// A manual clock moved by the waits of the code under test: the test advances it to the due time
// of the earliest timer that code has armed, no further, and only once it is armed (the code is
// then parked on it: what the test reads of it is settled). Advancing a fixed step per few real
// milliseconds instead runs the clock ahead of code that a loaded host stalls, and a cap on the
// steps then fails a test that only ran late.
//
// The clock keeps its timers itself, the time and every timer's due under one lock, so a timer
// the test sees armed fires exactly when the clock reaches its due. It once wrapped
// FakeTimeProvider's timers in a list of its own: a timer armed on another thread (the simulator
// engine's, after an idle wake) was in that list before FakeTimeProvider had it, the test advanced
// to its due in between, and FakeTimeProvider then counted the wait from the advanced time. The
// list kept a due the clock had passed and nothing fired there: the test advanced by zero for the
// rest of its 20 s (CI: LoraTests.Slots_Full_..., "plain never ran"; reproduced by widening that
// gap to 5 ms, see the commit).
internal sealed class TimerClock : TimeProvider
{
    // A hang guard: a passing run ends as soon as the code gets there.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly Lock _lock = new();
    private readonly List<ClockTimer> _armed = [];
    private long _now = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks; // FakeTimeProvider's start
    private long _armings; // orders timers due at the same time: first armed, first fired

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _now), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _now);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ClockTimer(this, callback, state);
        Arm(timer, dueTime, period);
        return timer;
    }

    // Moves the clock by `delta`, firing on this thread, in order, each timer due by then, the
    // clock standing at each one's due while its callback runs (as FakeTimeProvider.Advance).
    public void Advance(TimeSpan delta)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delta, TimeSpan.Zero);
        long target;
        lock (_lock)
        {
            target = _now + delta.Ticks;
        }

        AdvanceTo(target);
    }

    // How many timers are armed to fire within `horizon` of now: a wait that ended leaves none of
    // its short timers behind.
    public int ArmedWithin(TimeSpan horizon)
    {
        lock (_lock)
        {
            var limit = _now + horizon.Ticks;
            return _armed.Count(timer => timer.Due <= limit);
        }
    }

    // Steps to the timers due within `horizon` of now (any, without one), one at a time, until the
    // condition holds; false when it does not within the bound. A timer due later (a 30 s queue wait
    // behind 100 ms polls) is never reached. The condition is read while the code is parked on a
    // timer, or runs. Each step fires at least the timer it stepped to, unless the code disarmed it.
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
                AdvanceTo(at);
            }
            else
            {
                await Task.Delay(1); // the code is running: its time, not the clock's
            }
        }
    }

    // Lets the code run `steps` timed waits and parks it on the next one's timer (a simulator
    // engine's steps): what the test reads then is what the last of them left.
    public async Task StepsAsync(int steps)
    {
        for (var i = 0; i <= steps; i++)
        {
            var deadline = DateTime.UtcNow + Bound;
            long? due;
            while ((due = NextDue(null)) is null)
            {
                Assert.True(DateTime.UtcNow < deadline, $"no timer was armed for wait {i + 1} of {steps} within {Bound}");
                await Task.Delay(1);
            }

            if (i < steps)
            {
                AdvanceTo(due.Value);
            }
        }
    }

    private long? NextDue(TimeSpan? horizon)
    {
        lock (_lock)
        {
            var limit = horizon is { } h ? _now + h.Ticks : long.MaxValue;
            var next = Earliest();
            return next is not null && next.Due <= limit ? next.Due : null;
        }
    }

    // Fires the timers due by `target` one at a time, outside the lock: a callback may arm,
    // change or dispose timers, and runs the code it wakes (an engine's next step) on this thread.
    private void AdvanceTo(long target)
    {
        while (true)
        {
            ClockTimer? timer;
            lock (_lock)
            {
                timer = Earliest();
                if (timer is null || timer.Due > target)
                {
                    _now = Math.Max(_now, target);
                    return;
                }

                _now = Math.Max(_now, timer.Due);
                _armed.Remove(timer);
                if (timer.Period > 0)
                {
                    Schedule(timer, timer.Due + timer.Period); // from its due: a late step does not shift the next
                }
            }

            timer.Callback(timer.State);
        }
    }

    // Under _lock.
    private ClockTimer? Earliest()
    {
        ClockTimer? next = null;
        foreach (var timer in _armed)
        {
            if (next is null || timer.Due < next.Due || (timer.Due == next.Due && timer.Order < next.Order))
            {
                next = timer;
            }
        }

        return next;
    }

    // Under _lock.
    private void Schedule(ClockTimer timer, long due)
    {
        timer.Due = due;
        timer.Order = ++_armings;
        _armed.Add(timer);
    }

    private bool Arm(ClockTimer timer, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(dueTime, TimeSpan.Zero);
        }

        if (period != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(period, TimeSpan.Zero);
        }

        lock (_lock)
        {
            if (timer.Disposed)
            {
                return false;
            }

            _armed.Remove(timer);
            timer.Period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks; // 0: once, as System.Threading.Timer
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                Schedule(timer, _now + dueTime.Ticks); // due at once (0) too: it fires at the next step
            }

            return true;
        }
    }

    private void Disarm(ClockTimer timer)
    {
        lock (_lock)
        {
            timer.Disposed = true;
            _armed.Remove(timer);
        }
    }

    // Its fields are read and written under the clock's lock.
    private sealed class ClockTimer(TimerClock clock, TimerCallback callback, object? state) : ITimer
    {
        public TimerCallback Callback { get; } = callback;

        public object? State { get; } = state;

        public long Due { get; set; }

        public long Period { get; set; }

        public long Order { get; set; }

        public bool Disposed { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period) => clock.Arm(this, dueTime, period);

        public void Dispose() => clock.Disarm(this);

        public ValueTask DisposeAsync()
        {
            clock.Disarm(this);
            return ValueTask.CompletedTask;
        }
    }
}
