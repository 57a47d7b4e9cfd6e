using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Threading.Tasks.Sources;
using AotProxy.Routing;

namespace AotProxy.Admission;

// One request waiting in an admission queue for a slot: a pooled IValueTaskSource, so a wait
// allocates nothing once the pool is warm (CancellationToken.UnsafeRegister aside). Exactly one
// of grant, timeout and cancellation ends a wait: each moves the state from Pending with one
// CAS, and the losers see a tombstone.
//
// Two owners, the request and the queue; the waiter goes back to its pool when both are done.
//   request:   var waiter = pool.Rent(tenant, @class, bucket, charge);
//              if (!ring.TryEnqueue(waiter)) { waiter.Abandon(); /* reject */ }
//              var outcome = await waiter.WaitAsync(maxQueueWait, requestAborted);
//              // The await released the request's share: do not touch the waiter after it.
//   scheduler: while (ring.TryDequeue(out var waiter))
//              {
//                  // read the payload here, before the release
//                  var granted = waiter.TryGrant();   // false: a tombstone, skip it
//                  waiter.ReleaseFromQueue();
//                  if (granted) break;
//              }
// Once enqueued, a waiter must be waited on (WaitAsync, then one await); until it is dequeued
// the queue still holds it, so a tombstone lingers in its slot but is never granted.
internal sealed class AdmissionWaiter : IValueTaskSource<WaitResult>
{
    // _state is generation << 3 | status. The generation moves on at each rent, so a callback that
    // read the state of an earlier use fails its CAS instead of completing this use.
    private const int StatusMask = 7; // AdmissionOutcome's four, and pending
    private const int PendingStatus = 0;
    private const int GenerationStep = StatusMask + 1;

    private const long NoDeadline = long.MaxValue;
    private const long NotArmed = long.MaxValue;

    // ITimer.Change's limit: 0xFFFFFFFE ms, about 49.7 days.
    private static readonly TimeSpan MaxTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly WaiterPool _pool;
    private readonly TimeProvider _time;
    private ManualResetValueTaskSourceCore<WaitResult> _core;
    private int _state;
    private int _owners;

    // This use's timeout, on _time's timestamp clock; NoDeadline when it has none (or has ended).
    private long _deadline = NoDeadline;
    private bool _waiting;

    // One timer for the waiter's whole life, created at its first timed wait and re-armed with
    // Change: a timer per wait would cost an allocation and the timer queue's bookkeeping.
    // _timerDue is the deadline the timer was last armed for (NotArmed once it has fired). A wait
    // whose deadline is no earlier leaves the timer alone: the fire comes early for it, and
    // OnTimerFired arms the timer again for the rest. Under load a waiter is reused many times
    // per max_queue_wait, so most waits skip the timer queue's lock altogether.
    // _timer and _timerDue change only under _timerLock.
    private readonly Lock _timerLock = new();
    private ITimer? _timer;
    private long _timerDue = NotArmed;
    private CancellationTokenRegistration _registration;

    internal AdmissionWaiter(WaiterPool pool)
    {
        _pool = pool;
        _time = pool.Time;
        // The scheduler grants from its own loop (and the timer from a timer thread): the request's
        // continuation must not run inline there.
        _core.RunContinuationsAsynchronously = true;
    }

    public string Tenant { get; private set; } = string.Empty;

    public string Class { get; private set; } = string.Empty;

    public int Bucket { get; private set; }

    // What granting it charges the fair-share accounts.
    public GrantCharge Charge { get; private set; }

    // A request requeued after its preemption: its first grant's charge stands, its next grant charges nothing.
    public bool Prepaid { get; private set; }

    // When it was rented, on the pool's TimeProvider timestamp clock.
    public long EnqueuedAt { get; private set; }

    // When its request first queued (or was admitted), which the priority policy's aging counts
    // from: a request requeued after its preemption keeps the arrival its first wait had, so the
    // preemption does not restart its climb (EnqueuedAt otherwise).
    public long ArrivedAt { get; private set; }

    public bool IsPending => (Volatile.Read(ref _state) & StatusMask) == PendingStatus;

    // Called once per rent, right after a successful enqueue; await the result once. timeout
    // counts from the rent (EnqueuedAt) and is Timeout.InfiniteTimeSpan or 0 .. ~49.7 days; zero
    // times out at once. An already cancelled token ends the wait as Cancelled at once (unless the
    // scheduler granted it first).
    public ValueTask<WaitResult> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(timeout, MaxTimeout);
        }

        Debug.Assert(!_waiting, "WaitAsync is called once per rent.");
        _waiting = true;
        var state = Volatile.Read(ref _state);
        if ((state & StatusMask) == PendingStatus)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                TryComplete(state, AdmissionOutcome.Cancelled);
            }
            else if (timeout == TimeSpan.Zero)
            {
                TryComplete(state, AdmissionOutcome.TimedOut);
            }
            else
            {
                if (cancellationToken.CanBeCanceled)
                {
                    _registration = cancellationToken.UnsafeRegister(static (waiter, _) => ((AdmissionWaiter)waiter!).OnTokenCancelled(), this);
                }

                if (timeout != Timeout.InfiniteTimeSpan && IsPending)
                {
                    ArmTimer(timeout);
                }
            }
        }

        return new ValueTask<WaitResult>(this, _core.Version);
    }

    // The scheduler, after dequeuing and before ReleaseFromQueue: Pending -> Granted, handing the
    // request its slots. False means the wait already ended (timed out or cancelled): skip this
    // tombstone, the slots go to the next waiter.
    public bool TryGrant(int slotBucket = SlotBook.Unbucketed, WorkerSlot workerSlot = default)
    {
        var state = Volatile.Read(ref _state);
        return (state & StatusMask) == PendingStatus && TryComplete(state, AdmissionOutcome.Granted, slotBucket, workerSlot);
    }

    // The scheduler, for a waiter it holds (dequeued, not yet released): ends the wait as
    // Cancelled, as when the gateway drains its queues at shutdown. False if it had already ended.
    public bool TryCancel()
    {
        var state = Volatile.Read(ref _state);
        return (state & StatusMask) == PendingStatus && TryComplete(state, AdmissionOutcome.Cancelled);
    }

    // The scheduler, for a waiter it holds (dequeued, not yet released) whose class protection
    // sheds: ends the wait as Shed. False if it had already ended.
    public bool TryShed()
    {
        var state = Volatile.Read(ref _state);
        return (state & StatusMask) == PendingStatus && TryComplete(state, AdmissionOutcome.Shed);
    }

    // The queue's share: call once after dequeuing (granted or tombstone), and not touch the
    // waiter afterwards.
    public void ReleaseFromQueue() => Release();

    // For a waiter that was rented but never enqueued (the ring was full, or the request was
    // rejected first) and never waited on: the request gives back both shares, and the waiter
    // returns to the pool at once. An enqueued waiter cannot be abandoned: the queue holds it.
    public void Abandon()
    {
        var state = Volatile.Read(ref _state);
        if (_waiting || (state & StatusMask) != PendingStatus || Interlocked.CompareExchange(ref _owners, 0, 2) != 2)
        {
            ThrowNotAbandonable();
        }

        // No timer is armed and no token registered (WaitAsync never ran), so nothing can race
        // with this write; Cancelled keeps IsPending false while it sits in the pool.
        Volatile.Write(ref _state, (state & ~StatusMask) | StatusOf(AdmissionOutcome.Cancelled));
        Recycle();
    }

    public WaitResult GetResult(short token)
    {
        var outcome = _core.GetResult(token);

        // Dispose, not Unregister: Dispose waits for a token callback that is already running, so
        // none can reach the next use.
        _registration.Dispose();
        _registration = default;

        // The timer is left armed: the next wait may use it as it is (see _timerDue), and if it
        // fires first it finds NoDeadline and does nothing. Disarming would cost a trip through
        // the timer queue per wait (~50 ns of a ~200 ns handoff, see perf/RESULTS.md).
        Volatile.Write(ref _deadline, NoDeadline);

        Release();
        return outcome;
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    internal void Start(string tenant, string @class, int bucket, GrantCharge charge, long enqueuedAt, bool prepaid, long arrivedAt)
    {
        Prepaid = prepaid;
        Debug.Assert(Volatile.Read(ref _owners) == 0, "Only an idle waiter is rented.");
        Tenant = tenant;
        Class = @class;
        Bucket = bucket;
        Charge = charge;
        EnqueuedAt = enqueuedAt;
        ArrivedAt = arrivedAt;
        _waiting = false;
        _owners = 2;
        Volatile.Write(ref _deadline, NoDeadline);
        Volatile.Write(ref _state, unchecked((_state & ~StatusMask) + GenerationStep) | PendingStatus);
    }

    // When the pool is full and drops this waiter.
    internal void DisposeTimer()
    {
        lock (_timerLock)
        {
            _timer?.Dispose();
            _timer = null;
            _timerDue = NotArmed;
        }
    }

    private static int StatusOf(AdmissionOutcome outcome) => (int)outcome + 1;

    [StackTraceHidden]
    [DoesNotReturn]
    private static void ThrowNotAbandonable() =>
        throw new InvalidOperationException("Only a waiter that was never enqueued nor waited on can be abandoned.");

    private void ArmTimer(TimeSpan timeout)
    {
        // From the rent, not from now: the wait is time spent in the queue, and WaitAsync follows
        // the rent by a microsecond, so this saves a clock read (~20 ns) per wait.
        var deadline = EnqueuedAt + (long)Math.Ceiling(timeout.Ticks * ((double)_time.TimestampFrequency / TimeSpan.TicksPerSecond));

        // Exchange, a full fence: the read of _timerDue cannot move above the deadline's write.
        // OnTimerFired writes _timerDue and then reads the deadline, the other way round, so
        // either this read sees its NotArmed, or it sees this deadline.
        Interlocked.Exchange(ref _deadline, deadline);
        if (Volatile.Read(ref _timerDue) <= deadline)
        {
            return;
        }

        lock (_timerLock)
        {
            if (_timerDue <= deadline)
            {
                return;
            }

            _timer ??= CreateTimer();
            _timer.Change(DueIn(deadline - _time.GetTimestamp()), Timeout.InfiniteTimeSpan);
            _timerDue = deadline;
        }
    }

    // Whole milliseconds, at least one: the system timer truncates a due time to milliseconds,
    // and 0 would fire again at once, over and over until the deadline.
    private TimeSpan DueIn(long timestamps) =>
        TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(timestamps * 1000.0 / _time.TimestampFrequency)));

    private ITimer CreateTimer()
    {
        // The timer serves every later use of this waiter: it must not capture this request's
        // ExecutionContext (its AsyncLocals) for all of them.
        if (ExecutionContext.IsFlowSuppressed())
        {
            return NewTimer();
        }

        using (ExecutionContext.SuppressFlow())
        {
            return NewTimer();
        }

        ITimer NewTimer() => _time.CreateTimer(static waiter => ((AdmissionWaiter)waiter!).OnTimerFired(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    // ITimer cannot tell a fire due for this use from one armed for an earlier use (a fire
    // already queued, or a timer this use chose to leave as it was), so the deadline decides: a
    // fire at or after the current use's deadline times it out, an earlier one arms the timer for
    // the rest. (The same covers a timer that fires a little early against the timestamp clock.)
    private void OnTimerFired()
    {
        int state;
        lock (_timerLock)
        {
            // The timer is no longer armed (unless a wait re-armed it since, and then one Change
            // too many is the only cost). See ArmTimer for why Exchange.
            Interlocked.Exchange(ref _timerDue, NotArmed);
            state = Volatile.Read(ref _state);
            var deadline = Volatile.Read(ref _deadline);
            // The second read of _state: the deadline belongs to this state's use.
            if ((state & StatusMask) != PendingStatus || deadline == NoDeadline || Volatile.Read(ref _state) != state)
            {
                return;
            }

            var remaining = deadline - _time.GetTimestamp();
            if (remaining > 0)
            {
                _timer?.Change(DueIn(remaining), Timeout.InfiniteTimeSpan);
                _timerDue = deadline;
                return;
            }
        }

        TryCompleteFromCallback(state, AdmissionOutcome.TimedOut);
    }

    private void OnTokenCancelled()
    {
        var state = Volatile.Read(ref _state);
        if ((state & StatusMask) == PendingStatus)
        {
            TryCompleteFromCallback(state, AdmissionOutcome.Cancelled);
        }
    }

    private bool TryComplete(int expected, AdmissionOutcome outcome, int slotBucket = SlotBook.Unbucketed, WorkerSlot workerSlot = default)
    {
        if (Interlocked.CompareExchange(ref _state, (expected & ~StatusMask) | StatusOf(outcome), expected) != expected)
        {
            return false;
        }

        _core.SetResult(new WaitResult(outcome, slotBucket, workerSlot));
        return true;
    }

    // A timer or token callback owns no share of the waiter, so it takes one for the length of
    // SetResult. Without it, the request could read the result and the queue release the
    // tombstone while SetResult is still running, and the waiter be reset and rented again under
    // it. Taking the share after the CAS is safe: the request keeps its share until it has read
    // the result, which this SetResult has not yet published.
    private void TryCompleteFromCallback(int expected, AdmissionOutcome outcome)
    {
        if (Interlocked.CompareExchange(ref _state, (expected & ~StatusMask) | StatusOf(outcome), expected) != expected)
        {
            return;
        }

        Interlocked.Increment(ref _owners);
        _core.SetResult(new WaitResult(outcome, SlotBook.Unbucketed));
        Release();
    }

    private void Release()
    {
        var owners = Interlocked.Decrement(ref _owners);
        Debug.Assert(owners >= 0, "Each owner releases once.");
        if (owners == 0)
        {
            Recycle();
        }
    }

    private void Recycle()
    {
        // The pool must not keep the request's strings alive.
        Tenant = string.Empty;
        Class = string.Empty;
        _core.Reset();
        _pool.Return(this);
    }
}
