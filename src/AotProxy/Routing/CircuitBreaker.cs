using AotProxy.Configuration;

namespace AotProxy.Routing;

// One worker's breaker: closed -> (failure_threshold consecutive failures) -> open ->
// (open_timeout) -> half-open, where at most half_open_max_requests trial requests run ->
// success_threshold successes close it, one failure opens it again. The closed path is
// lock-free (a volatile read and an Interlocked counter); transitions are rare and take a lock.
// Thresholds come from the current snapshot on every call, so a reload applies at once.
// Every transition and every trial's end changes the slots the worker offers admission, and is
// signalled (`capacity`); so is the end of open_timeout, by a timer set when the breaker opens.
// opened: told first when this breaker's own failures open it (the worker's warm-up goes before its trials).
internal sealed class CircuitBreaker(TimeProvider time, CapacitySignal? capacity = null, Action? opened = null)
{
    private readonly Lock _lock = new();
    private volatile BreakerState _state = BreakerState.Closed;
    private int _consecutiveFailures;
    private int _trialsInFlight;
    private int _trialSuccesses;
    private long _openedAt;
    private long _failures;
    private long _opened;
    private DateTimeOffset? _lastTransition;

    public BreakerState State => _state;

    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    public long Failures => Interlocked.Read(ref _failures);

    public long TimesOpened => Interlocked.Read(ref _opened);

    public DateTimeOffset? LastTransition
    {
        get
        {
            lock (_lock)
            {
                return _lastTransition;
            }
        }
    }

    // Whether a request could be let through now (routing filters on this; TryAcquire decides).
    public bool AllowsTraffic(CircuitBreakerModel model) => _state switch
    {
        BreakerState.Closed => true,
        BreakerState.HalfOpen => Volatile.Read(ref _trialsInFlight) < model.HalfOpenMaxRequests,
        _ => time.GetElapsedTime(Interlocked.Read(ref _openedAt)) >= model.OpenTimeout,
    };

    public BreakerPermit TryAcquire(CircuitBreakerModel model)
    {
        if (_state == BreakerState.Closed)
        {
            return BreakerPermit.Normal;
        }

        lock (_lock)
        {
            if (_state == BreakerState.Open)
            {
                if (time.GetElapsedTime(_openedAt) < model.OpenTimeout)
                {
                    return BreakerPermit.Denied;
                }

                MoveTo(BreakerState.HalfOpen);
            }

            if (_state == BreakerState.Closed)
            {
                return BreakerPermit.Normal;
            }

            if (_trialsInFlight >= model.HalfOpenMaxRequests)
            {
                return BreakerPermit.Denied;
            }

            _trialsInFlight++;
            return BreakerPermit.Trial;
        }
    }

    public void OnSuccess(BreakerPermit permit, CircuitBreakerModel model)
    {
        if (permit != BreakerPermit.Trial)
        {
            if (Volatile.Read(ref _consecutiveFailures) != 0)
            {
                Interlocked.Exchange(ref _consecutiveFailures, 0);
            }

            return;
        }

        lock (_lock)
        {
            _trialsInFlight--;
            if (_state == BreakerState.HalfOpen && ++_trialSuccesses >= model.SuccessThreshold)
            {
                MoveTo(BreakerState.Closed);
            }
        }

        capacity?.Changed();
    }

    public void OnFailure(BreakerPermit permit, CircuitBreakerModel model)
    {
        Interlocked.Increment(ref _failures);
        if (permit != BreakerPermit.Trial)
        {
            if (Interlocked.Increment(ref _consecutiveFailures) < model.FailureThreshold || _state != BreakerState.Closed)
            {
                return;
            }

            bool opened;
            lock (_lock)
            {
                opened = _state == BreakerState.Closed;
                if (opened)
                {
                    MoveTo(BreakerState.Open);
                }
            }

            if (opened)
            {
                Opened(model);
            }

            return;
        }

        bool reopened;
        lock (_lock)
        {
            _trialsInFlight--;
            reopened = _state == BreakerState.HalfOpen;
            if (reopened)
            {
                MoveTo(BreakerState.Open);
            }
        }

        if (reopened)
        {
            Opened(model);
        }
        else
        {
            capacity?.Changed();
        }
    }

    // The request ended without a verdict on the worker (the client went away): a trial slot is
    // handed back, nothing else changes.
    public void OnAbandoned(BreakerPermit permit)
    {
        if (permit == BreakerPermit.Trial)
        {
            lock (_lock)
            {
                _trialsInFlight--;
            }

            capacity?.Changed();
        }
    }

    // With [cluster]: another replica's breaker opened on this worker, and stays open for
    // `remaining` by Redis's clock. A closed breaker opens here too for that long (open_timeout is
    // counted from the moment that makes it end then); its half-open trials after it are this
    // replica's own. False: not closed here (open or trying already), nothing changes.
    public bool OpenFor(TimeSpan remaining, CircuitBreakerModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (remaining <= TimeSpan.Zero || _state != BreakerState.Closed)
        {
            return false;
        }

        remaining = remaining < model.OpenTimeout ? remaining : model.OpenTimeout;
        lock (_lock)
        {
            if (_state != BreakerState.Closed)
            {
                return false;
            }

            MoveTo(BreakerState.Open);
            var before = (long)((model.OpenTimeout - remaining).TotalSeconds * time.TimestampFrequency);
            Interlocked.Exchange(ref _openedAt, time.GetTimestamp() - before);
        }

        if (capacity is not null)
        {
            capacity.Changed();
            capacity.ChangedAfter(remaining);
        }

        return true;
    }

    // POST /api/circuit-breaker/{name}/reset: closed, counters cleared (the failure total stays).
    public void Reset()
    {
        bool closed;
        lock (_lock)
        {
            closed = _state != BreakerState.Closed;
            if (closed)
            {
                MoveTo(BreakerState.Closed);
            }

            Interlocked.Exchange(ref _consecutiveFailures, 0);
        }

        if (closed)
        {
            capacity?.Changed();
        }
    }

    // The worker offers nothing now, and may offer trials once open_timeout has passed.
    private void Opened(CircuitBreakerModel model)
    {
        opened?.Invoke();
        if (capacity is not null)
        {
            capacity.Changed();
            capacity.ChangedAfter(model.OpenTimeout);
        }
    }

    // Under _lock.
    private void MoveTo(BreakerState next)
    {
        _state = next;
        _lastTransition = time.GetUtcNow();
        _trialSuccesses = 0;
        switch (next)
        {
            case BreakerState.Open:
                Interlocked.Exchange(ref _openedAt, time.GetTimestamp());
                Interlocked.Increment(ref _opened);
                break;
            case BreakerState.Closed:
                Interlocked.Exchange(ref _consecutiveFailures, 0);
                _trialsInFlight = 0;
                break;
        }
    }
}
