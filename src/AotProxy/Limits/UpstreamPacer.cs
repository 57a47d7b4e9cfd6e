using AotProxy.Configuration;

namespace AotProxy.Limits;

// Keeps one rate-limited upstream (a hosted API with its own rpm/tpm) below its limits, so that
// it never answers 429: at most RequestLimit starts and TokenLimit reserved tokens in any sliding
// 60 s, and starts at least Spacing apart. A request that cannot go yet waits in FIFO order, on
// one timer per pacer (TimeProvider), until its turn, its max_wait or its client's abort.
// A lock per pacer is fine: only paced workers have one; an unpaced worker costs a null check.
internal sealed class UpstreamPacer
{
    private static readonly long WindowTicks = PacingModel.Window.Ticks;

    private readonly TimeProvider _time;
    private readonly long _origin;
    private readonly Lock _lock = new();
    private readonly LinkedList<PacingWaiter> _waiters = new();
    private readonly ITimer _timer;
    private PacingModel _limits;

    // The starts of the last 60 s, oldest first: a ring of (time, tokens), grown by doubling.
    private (long At, long Tokens)[] _starts = new (long, long)[16];
    private int _head;
    private int _count;
    private long _windowTokens;
    private long _lastStart = long.MinValue;

    private long _granted;
    private long _waits;
    private long _waitTicks;
    private long _timeouts;

    public UpstreamPacer(PacingModel limits, TimeProvider time)
    {
        _limits = limits;
        _time = time;
        _origin = time.GetTimestamp();
        _timer = time.CreateTimer(static state => ((UpstreamPacer)state!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public PacingModel Limits => _limits;

    // Requests the pacer let go upstream (at once or after waiting).
    public long Granted => Interlocked.Read(ref _granted);

    // Requests that had to wait, whatever became of them.
    public long Waits => Interlocked.Read(ref _waits);

    public TimeSpan WaitTime => TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks));

    // Requests that got no turn within max_wait (503).
    public long Timeouts => Interlocked.Read(ref _timeouts);

    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiters.Count;
            }
        }
    }

    // Starts and reserved tokens in the last 60 s.
    public (int Requests, long Tokens) WindowUsage()
    {
        lock (_lock)
        {
            Prune(Now);
            return (_count, _windowTokens);
        }
    }

    // tokens: the request's reservation, prompt estimate + max_tokens (what OpenAI counts).
    public ValueTask<PacingResult> WaitAsync(long tokens, CancellationToken ct)
    {
        PacingWaiter waiter;
        lock (_lock)
        {
            var now = Now;
            Prune(now);
            if (_waiters.Count == 0 && ReadyAt(now, tokens) <= now)
            {
                Start(now, tokens);
                return new(PacingResult.Now);
            }

            if (ct.IsCancellationRequested)
            {
                return new(new PacingResult(PacingOutcome.Cancelled, TimeSpan.Zero));
            }

            waiter = new PacingWaiter(this, tokens, now, now + _limits.MaxWait.Ticks);
            waiter.Node = _waiters.AddLast(waiter);
            Interlocked.Increment(ref _waits);
            Reschedule(now);
        }

        // Outside the lock: an already cancelled token runs the callback inline, and it locks.
        waiter.Watch(ct);
        return new(waiter.Task);
    }

    // A reload changed the worker's rpm, tpm or max_wait: the window carries over, and waiters
    // that may go under the new limits go now.
    public void Update(PacingModel limits)
    {
        lock (_lock)
        {
            _limits = limits;
            Pump(Now);
        }
    }

    // The worker is no longer paced (a reload removed its limits): everyone waiting goes.
    public void ReleaseAll()
    {
        lock (_lock)
        {
            var now = Now;
            while (_waiters.First is { } node)
            {
                Grant(node.Value, now);
            }

            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    internal void Cancel(PacingWaiter waiter)
    {
        lock (_lock)
        {
            if (waiter.Node?.List is null)
            {
                return; // granted or timed out already
            }

            var now = Now;
            Remove(waiter, now);
            waiter.Complete(new PacingResult(PacingOutcome.Cancelled, TimeSpan.FromTicks(now - waiter.Enqueued)));
            // Its place in the queue is free: whoever was behind it may be first now.
            Pump(now);
        }
    }

    // TimeSpan ticks since the pacer started: one unit for the window, spacing and deadlines.
    private long Now => _time.GetElapsedTime(_origin).Ticks;

    private void OnTimer()
    {
        lock (_lock)
        {
            Pump(Now);
        }
    }

    // Lets go every waiter at the head whose turn has come, times out the ones past max_wait,
    // and sets the timer for the next of either.
    private void Pump(long now)
    {
        Prune(now);
        while (_waiters.First is { } node && ReadyAt(now, node.Value.Tokens) <= now)
        {
            Grant(node.Value, now);
        }

        for (var node = _waiters.First; node is not null;)
        {
            var next = node.Next;
            var waiter = node.Value;
            if (waiter.Deadline <= now)
            {
                Remove(waiter, now);
                Interlocked.Increment(ref _timeouts);
                waiter.Complete(new PacingResult(PacingOutcome.TimedOut, TimeSpan.FromTicks(now - waiter.Enqueued), RetryAfterSeconds(now, waiter.Tokens)));
            }

            node = next;
        }

        Reschedule(now);
    }

    private void Grant(PacingWaiter waiter, long now)
    {
        Remove(waiter, now);
        Start(now, waiter.Tokens);
        waiter.Complete(new PacingResult(PacingOutcome.Granted, TimeSpan.FromTicks(now - waiter.Enqueued)));
    }

    private void Remove(PacingWaiter waiter, long now)
    {
        _waiters.Remove(waiter.Node!);
        Interlocked.Add(ref _waitTicks, now - waiter.Enqueued);
    }

    private void Reschedule(long now)
    {
        if (_waiters.First is not { } first)
        {
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        var due = ReadyAt(now, first.Value.Tokens);
        foreach (var waiter in _waiters)
        {
            due = Math.Min(due, waiter.Deadline);
        }

        // Rounded up to whole milliseconds: timers truncate to them, and an early tick would only
        // find the turn not come yet and spin.
        var delay = Math.Max(0, due - now);
        delay = (delay + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond * TimeSpan.TicksPerMillisecond;
        _timer.Change(TimeSpan.FromTicks(delay), Timeout.InfiniteTimeSpan);
    }

    // The earliest time from now on at which a request reserving `tokens` may start, the queue aside.
    private long ReadyAt(long now, long tokens)
    {
        var limits = _limits;
        var at = now;
        var requestLimit = limits.RequestLimit;
        if (requestLimit > 0)
        {
            if (_lastStart != long.MinValue)
            {
                at = Math.Max(at, _lastStart + limits.Spacing.Ticks);
            }

            if (_count >= requestLimit)
            {
                // The start that must leave the window to make room for one more.
                at = Math.Max(at, StartAt(_count - (int)requestLimit).At + WindowTicks);
            }
        }

        var tokenLimit = limits.TokenLimit;
        if (tokenLimit > 0 && _windowTokens + tokens > tokenLimit)
        {
            // Wait for the oldest starts to leave until the reservation fits; one larger than the
            // whole limit goes alone, once the window is empty (else it would wait forever).
            var left = _windowTokens;
            for (var i = 0; i < _count; i++)
            {
                var start = StartAt(i);
                left -= start.Tokens;
                at = Math.Max(at, start.At + WindowTicks);
                if (left + tokens <= tokenLimit || left == 0)
                {
                    break;
                }
            }
        }

        return at;
    }

    private void Start(long now, long tokens)
    {
        if (_count == _starts.Length)
        {
            var grown = new (long, long)[_starts.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                grown[i] = StartAt(i);
            }

            _starts = grown;
            _head = 0;
        }

        _starts[(_head + _count) & (_starts.Length - 1)] = (now, tokens);
        _count++;
        _windowTokens += tokens;
        _lastStart = now;
        Interlocked.Increment(ref _granted);
    }

    // Starts older than 60 s no longer count.
    private void Prune(long now)
    {
        while (_count > 0 && _starts[_head].At + WindowTicks <= now)
        {
            _windowTokens -= _starts[_head].Tokens;
            _head = (_head + 1) & (_starts.Length - 1);
            _count--;
        }
    }

    private (long At, long Tokens) StartAt(int index) => _starts[(_head + index) & (_starts.Length - 1)];

    // When a retry has a fair chance: the next turn, after one spacing per request still queued.
    private int RetryAfterSeconds(long now, long tokens)
    {
        var wait = ReadyAt(now, tokens) - now + (_waiters.Count * _limits.Spacing.Ticks);
        return (int)Math.Clamp((wait + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond, 1, 3600);
    }
}
