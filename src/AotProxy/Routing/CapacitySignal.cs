namespace AotProxy.Routing;

// What the workers offer admission changed without a reload: a health check turned, a breaker
// moved or ended a trial, a worker was drained or undrained, a scrape moved adaptive slots.
// Admission then reads every pool's capacity again and hands what grew to its waiters at once
// (AdmissionController connects itself at startup; unconnected, in tests of routing alone, a
// signal does nothing). Only an open breaker's open_timeout passes with no event of its own:
// ChangedAfter raises the signal once it has.
internal sealed class CapacitySignal(TimeProvider time)
{
    // A timer may fire up to a tick of the system clock (~1-15 ms) before the timestamp clock the
    // breaker compares with open_timeout says that much has passed.
    private static readonly TimeSpan TimerSlack = TimeSpan.FromMilliseconds(20);

    private Action? _refresh;
    private Action? _watch;

    public void Connect(Action refresh)
    {
        if (Interlocked.CompareExchange(ref _refresh, refresh, null) is not null)
        {
            throw new InvalidOperationException("The capacity signal is connected already: one admission reads it.");
        }
    }

    // Someone beside admission who shows the change (the admin plane's live console).
    public void Watch(Action watch)
    {
        if (Interlocked.CompareExchange(ref _watch, watch, null) is not null)
        {
            throw new InvalidOperationException("The capacity signal is watched already.");
        }
    }

    public void Changed()
    {
        Volatile.Read(ref _refresh)?.Invoke();
        Volatile.Read(ref _watch)?.Invoke();
    }

    // Once, `delay` from now (a breaker that just opened may let trials through then).
    public void ChangedAfter(TimeSpan delay)
    {
        var timer = new OneShot(this);
        timer.Start(time, delay + TimerSlack);
    }

    // A timer that signals once and then lets go of itself.
    private sealed class OneShot(CapacitySignal signal)
    {
        private ITimer? _timer;
        private int _fired;

        public void Start(TimeProvider time, TimeSpan delay)
        {
            var timer = time.CreateTimer(static state => ((OneShot)state!).Fire(), this, delay, Timeout.InfiniteTimeSpan);
            Volatile.Write(ref _timer, timer);
            if (Volatile.Read(ref _fired) == 1)
            {
                timer.Dispose(); // fired before it was stored
            }
        }

        private void Fire()
        {
            Volatile.Write(ref _fired, 1);
            Interlocked.Exchange(ref _timer, null)?.Dispose();
            signal.Changed();
        }
    }
}
