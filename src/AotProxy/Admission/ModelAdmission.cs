using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using AotProxy.Accounting;
using AotProxy.Admission.Policies;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Threading;

namespace AotProxy.Admission;

// One model pool's admission state: its slots, its queue levels with the tenants' sub-queues,
// the fair-share accounts, and the dispatcher that hands freed slots to waiters. Long-lived (the
// controller keeps one per model name), so waiters and counters survive a reload.
//
// The dispatcher runs on whichever thread signals it (an enqueue, a release, a timeout) and on
// one thread at a time: the first signal runs it, later signals only count, and the runner goes
// round again until no signal is left unhandled. So a waiter is never stranded next to a free
// slot, and the policies need no locks.
//
// Every grant also takes a slot on a worker of the pool (Router.TryReserve): a grant always has a
// worker with room behind it. Where none has one although the pool's book shows a free slot (a
// worker that also serves another model is full, a half-open breaker's trial is out, a worker went
// away since the last refresh), nothing is granted, and the waiters wait for a slot to come free.
internal sealed class ModelAdmission
{
    private readonly QueueLevel?[] _levels = new QueueLevel?[AdmissionLimits.MaxLevels];
    private readonly ConcurrentDictionary<string, FairShareAccount> _tenants = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, FairShareAccount> _classes = new(StringComparer.Ordinal);
    private readonly WaiterPool _waiters;
    private readonly TimeProvider _time;
    private readonly Router? _router;
    private volatile WorkerPool? _pool;
    private volatile GatewaySnapshot? _snapshot;
    private volatile SchedulerModel _scheduler;
    private volatile ISchedulerPolicy _policy;
    private volatile SharedVtc? _fleet;
    private int _levelCount;
    private int _waiting;
    private int _signals;
    private double _classFloor;

    // Preemption before the first byte: the admitted requests of preemptible classes (a table made
    // at the first; cells below _preemptibleHigh may be taken), the preemptions whose slots have not
    // come back yet, and the slots that did, for the dispatcher to hand to the waiters they were taken for.
    private PreemptionTicket?[]? _preemptible;
    private int _preemptibleHigh;
    private int _preemptibleCount;
    private int _pendingPreemptions;

    // The priority of the least important preemptible class (-1: none): with [cluster], waiters
    // of a more important class may preempt a request of it on another replica (PassToFleet).
    private int _leastPreemptible = -1;
    private readonly ConcurrentQueue<SlotHandover> _handovers = new();

    // router: where grants take their worker slots; null only in the policies' own tests, whose
    // grants carry none.
    public ModelAdmission(string model, SchedulerModel scheduler, WaiterPool waiters, TimeProvider time, Router? router = null)
    {
        Model = model;
        _scheduler = scheduler;
        _policy = SchedulerPolicies.Get(scheduler.Policy);
        _waiters = waiters;
        _time = time;
        _router = router;
        Protection = new ClassProtection(time, scheduler.Protection, OldestWait, ShedChanged);
    }

    public string Model { get; }

    public SlotBook Slots { get; } = new();

    public SchedulerModel Scheduler => _scheduler;

    // Where grants take their worker slots: the model's pool in the last applied worker set, or
    // its last one when no worker serves the model any more.
    public WorkerPool? Pool => _pool;

    // Slots granted over the last 10 s (straight on or from a queue), for Retry-After.
    public OutcomeWindow Grants { get; } = new();

    public ServiceTimes ServiceTimes { get; } = new();

    // Sheds the loosest classes while the pool's workers degrade ([[classes]] max_error_rate,
    // ttft_tolerance); the forwarding stage reports each upstream attempt to it, once (AdmissionLease.Observe).
    public ClassProtection Protection { get; }

    // With [cluster]: the tenants' counters fleet-wide (SharedFairShare.Attach), charged when a
    // granted request takes its turn on the fleet's workers (FleetTurnAsync) and settled with the
    // local ones; a grant needs its consent too (SharedVtc.MayGrant). Null alone.
    public SharedVtc? Fleet
    {
        get => _fleet;
        set => _fleet = value;
    }

    // Queued and not yet taken off a queue (a timed-out waiter counts until the dispatcher skips it).
    public int Waiting => Volatile.Read(ref _waiting);

    public BusyLevels BusyLevels() => new(_levels, Volatile.Read(ref _levelCount));

    public int WaitingAt(int level) => _levels[level]?.Waiting ?? 0;

    public IEnumerable<FairShareAccount> Tenants => _tenants.Values;

    public IEnumerable<FairShareAccount> Classes => _classes.Values;

    public IEnumerable<QueueLevel> Levels
    {
        get
        {
            var count = Volatile.Read(ref _levelCount);
            for (var i = 0; i < count; i++)
            {
                if (_levels[i] is { } level)
                {
                    yield return level;
                }
            }
        }
    }

    // Ticks the longest-waiting request of the class has waited for a slot (0: none waits). Read
    // once per protection judgement: the array, not Levels' enumerator, so it allocates nothing.
    public long OldestWait(string className, long now)
    {
        var oldest = 0L;
        var count = Volatile.Read(ref _levelCount);
        for (var i = 0; i < count; i++)
        {
            oldest = Math.Max(oldest, _levels[i]?.OldestWait(now, className) ?? 0);
        }

        return oldest;
    }

    // The priority policy's aging interval in timestamp ticks: aging_factor x the recent median
    // request duration (1 s until the first request finished).
    public long AgingInterval(long now)
    {
        var median = ServiceTimes.Median(now, _time.TimestampFrequency);
        var seconds = _scheduler.AgingFactor * (median > 0 ? median : 1.0);
        return (long)(seconds * _time.TimestampFrequency);
    }

    public ValueTask<AdmissionResult> AdmitAsync(in AdmissionRequest request, CancellationToken cancellationToken)
    {
        var scheduler = _scheduler;
        if (Slots.Capacity == 0)
        {
            return new(AdmissionResult.Refused(AdmissionDecision.NoCapacity, _snapshot is { } snapshot ? ActiveHealth.ReturnSeconds(snapshot.Health) : 1, GrantRate()));
        }

        var classModel = request.Class;
        var classAccount = _classes.GetOrAdd(classModel.Name, static name => new FairShareAccount(name));
        if (Protection.Sheds(classModel.Name, out var retryAfter, out var reason))
        {
            // Before the utilization guard: a degraded fleet is no place for this class now, however idle.
            return new(AdmissionResult.Refused(AdmissionDecision.Shed, retryAfter, GrantRate(), shed: reason));
        }

        var limit = scheduler.UtilizationLimit(classModel, request.Priority);
        if (limit < 1 && Slots.Utilization >= limit)
        {
            // Until enough requests finish to bring utilization under the guard.
            var over = Slots.Used - (int)(limit * Slots.Capacity) + 1;
            return new(AdmissionResult.Refused(AdmissionDecision.CapacityGuard, RetryAfter(over, classModel), GrantRate()));
        }

        var tenant = _tenants.GetOrAdd(request.Tenant.Name, static name => new FairShareAccount(name));
        var charge = new GrantCharge(request.PromptTokens, scheduler.InputWeight, scheduler.OutputWeight, request.Tenant.Weight, classModel.Weight, Lookahead: scheduler.Lookahead * Math.Max(request.MaxTokens, 0));
        var policy = _policy;
        var level = policy.Level(classModel, request.Priority, scheduler);
        if (Waiting == 0 && policy.TryTakeSlot(this, level, classModel, out var slotBucket))
        {
            if (FleetAllows(tenant, charge) && TryReserve(out var workerSlot))
            {
                var lease = Grant(tenant, classAccount, slotBucket, charge);
                return new(new AdmissionResult(AdmissionDecision.Admitted, lease, 0, TimeSpan.Zero, workerSlot));
            }

            Slots.Release(slotBucket); // no worker has room now (or the fleet's fairer tenant gets it): wait
        }

        return QueueAsync(level, tenant, classAccount, classModel, charge, request.Updates, arrivedAt: null, cancellationToken);
    }

    // A preempted request (Yield gave its slot away) waits again at the head of its tenant's queue,
    // with the charge of its first grant: its next grant charges nothing more, and its settlement
    // is that charge's. A stream that asked for queue updates (updates) hears them again. arrivedAt:
    // its first arrival, from which the priority policy's aging goes on counting.
    public ValueTask<AdmissionResult> RequeueAsync(FairShareAccount tenant, FairShareAccount classAccount, ClassModel classModel, int priority, GrantCharge charge, long arrivedAt, QueueUpdates? updates, CancellationToken cancellationToken) =>
        QueueAsync(_policy.Level(classModel, priority, _scheduler), tenant, classAccount, classModel, charge, updates, arrivedAt, cancellationToken);

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<AdmissionResult> QueueAsync(
        int level, FairShareAccount tenant, FairShareAccount classAccount, ClassModel classModel, GrantCharge charge, QueueUpdates? updates, long? arrivedAt, CancellationToken cancellationToken)
    {
        var requeued = arrivedAt is not null; // a first wait: null; a requeue: its request's first arrival
        var queueLevel = Level(level);
        var queue = queueLevel.GetOrAdd(tenant, classAccount, _scheduler.QueueCapacity);
        queue.Update(classModel);

        // Counted before the enqueue, so the dispatcher never takes a waiter it has not counted.
        // The lifts are read after the count: becoming backlogged may lift the tenant, and this
        // request's charge (at its grant) comes after that lift.
        OnQueued(queue, +1);
        charge = requeued ? charge : charge.At(tenant, classAccount);
        var waiter = _waiters.Rent(tenant.Name, classModel.Name, level, charge, prepaid: requeued, arrivedAt);
        var enqueuedAt = waiter.EnqueuedAt;
        var arrived = waiter.ArrivedAt;
        long ticket;
        if (!(requeued ? queue.TryRequeue(waiter, out ticket) : queue.Ring.TryEnqueue(waiter, out ticket)))
        {
            OnQueued(queue, -1);
            waiter.Abandon();
            return AdmissionResult.Refused(AdmissionDecision.QueueFull, RetryAfter(Waiting + 1, classModel), GrantRate());
        }

        Dispatch();
        // The await gives the request's share of the waiter back: only the result is read after it.
        var wait = waiter.WaitAsync(classModel.MaxQueueWait, cancellationToken);
        var (outcome, slotBucket, workerSlot) = updates is null
            ? await wait.ConfigureAwait(false)
            : await WaitReportingAsync(wait, queue, ticket, classModel, enqueuedAt, updates).ConfigureAwait(false);
        var waited = _time.GetElapsedTime(enqueuedAt);
        if (outcome == AdmissionOutcome.Granted)
        {
            return new AdmissionResult(AdmissionDecision.Granted, new AdmissionLease(this, tenant, classAccount, slotBucket, charge, _time.GetTimestamp(), arrived), 0, waited, workerSlot);
        }

        if (outcome == AdmissionOutcome.Shed)
        {
            // Its class was shed while it waited (SkipTombstones): the answer a new request of it gets.
            var reason = Protection.ShedAnswer(classModel.Name, out var retryAfter);
            return AdmissionResult.Refused(AdmissionDecision.Shed, retryAfter, GrantRate(), waited: waited, shed: reason);
        }

        // Before the dispatch that takes the tombstone off: the place it had when the wait ended.
        var position = PositionOf(queue, ticket);
        Dispatch(); // takes the tombstone off the queue if it is at the head
        var decision = outcome == AdmissionOutcome.TimedOut ? AdmissionDecision.TimedOut : AdmissionDecision.Cancelled;
        return AdmissionResult.Refused(decision, RetryAfter(Waiting + 1, classModel), GrantRate(), position, waited);
    }

    // The wait of a stream that asked for queue updates: its position and ETA at once (which sends
    // the response's head), whenever the position changes (looked at every QueueUpdates.Poll) and
    // at least every QueueUpdates.Interval, until the wait ends. Only this request's own flow
    // writes, so no write can race with what it does once admitted. Allocates (a Task per poll):
    // only requests that asked take this path.
    private async ValueTask<WaitResult> WaitReportingAsync(
        ValueTask<WaitResult> wait, TenantQueue queue, long ticket, ClassModel classModel, long enqueuedAt, QueueUpdates updates)
    {
        var pending = wait.AsTask();
        var reported = 0;
        var reportedAt = 0L;
        using var polls = new CancellationTokenSource(); // the last poll's timer ends with the wait
        while (!pending.IsCompleted)
        {
            var position = PositionOf(queue, ticket);
            var now = _time.GetTimestamp();
            if (position != reported || _time.GetElapsedTime(reportedAt, now) >= QueueUpdates.Interval)
            {
                await updates.WriteAsync(position, EtaMs(position, classModel, enqueuedAt, now)).ConfigureAwait(false);
                reported = position;
                reportedAt = now;
            }

            await Task.WhenAny(pending, Task.Delay(QueueUpdates.Poll, _time, polls.Token)).ConfigureAwait(false);
        }

        await polls.CancelAsync().ConfigureAwait(false);
        return await pending.ConfigureAwait(false);
    }

    // At the recent grant rate, the time until `position` requests have been granted; with no
    // grant in 10 s, what is left of the class's max_queue_wait (nothing suggests sooner).
    private long EtaMs(int position, ClassModel classModel, long enqueuedAt, long now)
    {
        var rate = GrantRate();
        if (rate > 0)
        {
            return (long)Math.Ceiling(position * 1000 / rate);
        }

        var left = classModel.MaxQueueWait - _time.GetElapsedTime(enqueuedAt, now);
        return left > TimeSpan.Zero ? (long)Math.Ceiling(left.TotalMilliseconds) : 0;
    }

    // Grants per second over the last 10 s (straight on or from a queue): what Retry-After and a
    // queued request's ETA are computed from. With [cluster], the fleet's: this replica's and the
    // other replicas' at their last flush (Cluster/FleetQueues), as the position counts their waiters.
    public double GrantRate() => LocalGrantRate() + (_fleet?.Others.GrantRate ?? 0);

    // This replica's own grants per second over the last 10 s (what it tells the fleet).
    public double LocalGrantRate() => Grants.PerSecond(_time.GetTimestamp() / _time.TimestampFrequency);

    // Where the waiter with `ticket` in `queue` stands in the order grants would go (1: next).
    // Every waiter of a level granted first (a lower index) is ahead of it; at its own level, the
    // waiters ahead of it in its tenant's queue, and as many again from each other tenant's queue
    // (at most what that queue holds), since fair share takes turns between backlogged tenants.
    // With unequal weights or request shapes the turns are unequal: an estimate then. Tombstones
    // not yet skipped count too. With [cluster], plus every waiter of the other replicas at its level
    // or a more important one, at their last flush (Cluster/FleetQueues): their order against this
    // one is not known, so all of a level's are counted ahead (an upper estimate at its own level).
    // Reads only counters: no lock, no allocation.
    public int PositionOf(TenantQueue queue, long ticket)
    {
        var ahead = Math.Max(0, ticket - queue.Ring.Head);
        var position = _fleet?.Others.AheadOf(queue.Level) ?? 0L;
        foreach (var level in BusyLevels())
        {
            if (level.Index < queue.Level)
            {
                position += level.Waiting;
            }
            else if (level.Index == queue.Level)
            {
                foreach (var other in level.Queues)
                {
                    position += ReferenceEquals(other, queue) ? ahead + 1 : Math.Min(other.Ring.Count, ahead + 1);
                }
            }
        }

        return (int)Math.Clamp(position, 1, int.MaxValue);
    }

    public void Release(FairShareAccount tenant, FairShareAccount classAccount, int slotBucket, GrantCharge charge, Usage? usage, long grantedAt, long streamedChunks = 0)
    {
        Slots.Release(slotBucket);
        tenant.AddInFlight(-1);
        classAccount.AddInFlight(-1);
        var charged = charge.Charged(streamedChunks); // the grant's and the stream's charges (StreamedCharge)
        if (usage is { } used)
        {
            // Up or down to exactly the usage's cost; without usage the estimate, the lookahead
            // and the chunks streamed stay charged.
            var cost = charge.Cost(used.PromptTokens, used.CompletionTokens);
            var settlement = cost - charged;
            tenant.Settle(settlement / charge.TenantWeight, charge.TenantLifts);
            if (charge.OnFleet)
            {
                _fleet?.Settle(tenant.Name, cost / charge.TenantWeight, charged / charge.TenantWeight);
            }

            classAccount.Settle(settlement / charge.ClassWeight, charge.ClassLifts);
        }
        else if (charge.OnFleet)
        {
            // The fleet's counter gives the charge back whole: without usage no worker served the
            // request (the fleet's slot for it never came, the client left first, or nothing was
            // relayed: UsageRecorder counts nothing either). Kept, it starved a tenant whose
            // requests waited for a worker's slot fleet-wide until its clients gave up
            // (perf/RESULTS.md, "Issue 16: fair share with request shapes"). The local counter
            // keeps the estimate, as a lone binary always has (the admission v2 issue owns it).
            _fleet?.Settle(tenant.Name, 0, charged / charge.TenantWeight);
        }

        ServiceTimes.Add(_time.GetElapsedTime(grantedAt).TotalSeconds);
        if (Waiting > 0)
        {
            Dispatch();
        }
    }

    // [cluster]: a granted request's turn on the fleet's workers (SharedVtc.TakeTurnAsync), which
    // charges the fleet's counter; alone (or in the policies' tests), at once and nothing to charge.
    public ValueTask<bool> FleetTurnAsync(FairShareAccount tenant, in GrantCharge charge, TimeSpan maxWait, CancellationToken cancellationToken, bool handedOver = false) =>
        _fleet is { } fleet
            ? fleet.TakeTurnAsync(tenant.Name, charge.TenantWeight, charge.Admission / charge.TenantWeight, maxWait, cancellationToken, handedOver)
            : new(true);

    // The workers where grants take their slots now, and the slots they offer (null pool: none,
    // in the policies' own tests); the snapshot's scheduler settings, when one is given. Only
    // AdmissionController calls it, one call at a time; requests only read what it set.
    public void Apply(int capacity, WorkerPool? pool = null, GatewaySnapshot? snapshot = null)
    {
        if (snapshot is not null)
        {
            if (snapshot.Scheduler != _scheduler)
            {
                _policy = SchedulerPolicies.Get(snapshot.Scheduler.Policy);
                _scheduler = snapshot.Scheduler;
                Protection.Apply(snapshot.Scheduler.Protection);
            }

            _snapshot = snapshot;
            _leastPreemptible = PreemptionTicket.LeastPreemptible(snapshot.Classes);
        }

        _pool = pool ?? _pool;
        Slots.Resize(capacity, _scheduler.BucketShares);
    }

    // Apply, then waiters take what grew.
    public void Refresh(int capacity, WorkerPool? pool = null, GatewaySnapshot? snapshot = null)
    {
        Apply(capacity, pool, snapshot);
        if (Waiting > 0)
        {
            Dispatch();
        }
    }

    public void Dispatch()
    {
        if (Interlocked.Increment(ref _signals) != 1)
        {
            return; // the running dispatcher goes round once more for this signal
        }

        var handled = 1;
        while (true)
        {
            Drain();
            var left = Interlocked.Add(ref _signals, -handled);
            if (left == 0)
            {
                return;
            }

            handled = left;
        }
    }

    private void Drain()
    {
        var now = _time.GetTimestamp();
        SkipTombstones();
        var policy = _policy;
        HandOver(now);
        while (Waiting > 0)
        {
            var queue = policy.Next(this, now, out var slotBucket);
            if (queue is null)
            {
                Preempt();
                return;
            }

            if (_fleet is { } fleet && queue.TryPeek(out var head) && !FleetAllows(queue.Tenant, head.Charge))
            {
                if (FleetsChoice(fleet, queue, slotBucket) is not { } fairer)
                {
                    // Another replica's tenant is less served: its replica takes the slot (the
                    // worker's slot is shared); the next flush signals again.
                    Slots.Release(slotBucket);
                    return;
                }

                queue = fairer;
            }

            if (!TryReserve(out var workerSlot))
            {
                // The book has a free slot but no worker has room: with [cluster], the worker's
                // slots are full fleet-wide; alone, a worker shared with another model is full.
                Slots.Release(slotBucket);
                Preempt();
                PassToFleet(now);
                return;
            }

            if (!TryGrantHead(queue, slotBucket, workerSlot, now))
            {
                return;
            }
        }
    }

    // Grants the head of `queue` the admission slot `slotBucket` and the worker's slot. False: the
    // head is counted but not yet published by its producer (which signals again once it is); the
    // slots went back. A tombstone at the head gives its slots back too: true, the next waiter may take them.
    private bool TryGrantHead(TenantQueue queue, int slotBucket, WorkerSlot workerSlot, long now)
    {
        if (!queue.TryDequeue(out var waiter))
        {
            workerSlot.Release();
            Slots.Release(slotBucket);
            return false;
        }

        OnQueued(queue, -1);
        var charge = waiter.Charge;
        var prepaid = waiter.Prepaid;
        if (waiter.TryGrant(slotBucket, workerSlot))
        {
            OnGranted(queue, charge, now, prepaid);
        }
        else
        {
            workerSlot.Release();
            Slots.Release(slotBucket);
        }

        waiter.ReleaseFromQueue();
        return true;
    }

    // An admitted request of a preemptible class (the lease's), in the pool's table, until
    // Unregister. A full table (more preemptible requests in flight than it has cells) leaves it
    // unpreemptible. With [cluster] too: its victim's worker slot, with the fleet's grant on it, is
    // handed over (Yield), and its fleet charge stays on its lease for its next attempt.
    // slotBucket, classModel: the bucket policy's (BucketPolicy.MayTake), whose slots move only
    // to a class that may hold them.
    public void Register(PreemptionTicket ticket, int classPriority, FairShareAccount classAccount, int slotBucket = SlotBook.Unbucketed, ClassModel? classModel = null)
    {
        if (ticket.WasPreempted)
        {
            return;
        }

        var cells = Volatile.Read(ref _preemptible);
        if (cells is null)
        {
            Interlocked.CompareExchange(ref _preemptible, new PreemptionTicket?[AdmissionLimits.PreemptibleCells], null);
            cells = _preemptible!;
        }

        ticket.Arm(classPriority, classAccount, slotBucket, classModel);
        for (var i = 0; i < cells.Length; i++)
        {
            if (Interlocked.CompareExchange(ref cells[i], ticket, null) is null)
            {
                ticket.Cell = i;
                Interlocked.Increment(ref _preemptibleCount);
                var high = Volatile.Read(ref _preemptibleHigh);
                while (high <= i && Interlocked.CompareExchange(ref _preemptibleHigh, i + 1, high) is var found && found != high)
                {
                    high = found;
                }

                return;
            }
        }

        ticket.Finish(); // no cell: not preemptible
    }

    // unyielded: preempted, but its slot is released as usual (the request ended before its
    // requeue): the preemption is no longer under way (one for the fleet's want never counted here).
    public void Unregister(PreemptionTicket ticket, bool unyielded = false)
    {
        if (unyielded && !ticket.ForFleet)
        {
            Interlocked.Decrement(ref _pendingPreemptions);
        }

        if (ticket.Cell < 0 || _preemptible is not { } cells)
        {
            return;
        }

        Interlocked.CompareExchange(ref cells[ticket.Cell], null, ticket);
        ticket.Cell = -1;
        Interlocked.Decrement(ref _preemptibleCount);
    }

    // A preempted request gives its admission slot, and the worker slot its cancelled attempt
    // held (`workerSlot`, taken from it; none when it was preempted between attempts), to the
    // waiter it was preempted for (the dispatcher hands them over, HandOver): it is not in flight
    // any more, and its charge stands for its next grant (RequeueAsync).
    // Preempted for a want of the fleet's (ForFleet): its worker slot goes back to the store, whose
    // grant script keeps it for that want; its admission slot is free here (a waiter here takes
    // no slot of that worker before the want has it, the store's running count says it is full).
    public void Yield(PreemptionTicket ticket, FairShareAccount tenant, FairShareAccount classAccount, int slotBucket, ref WorkerSlot workerSlot)
    {
        Unregister(ticket);
        tenant.AddInFlight(-1);
        classAccount.AddInFlight(-1);
        if (ticket.ForFleet)
        {
            workerSlot.Release(toFleet: true);
            Slots.Release(slotBucket);
        }
        else
        {
            _handovers.Enqueue(new SlotHandover(slotBucket, workerSlot));
            workerSlot = default;
        }

        Dispatch();
    }

    // The slots of preempted requests go straight to the most important class waiting, the one
    // they were taken for (or, if its waiters have gone, the next most important), never back to
    // the policy: under fairshare the requeued request could win it again. The worker slot goes
    // with them (with [cluster], the fleet's grant on it: not released for another replica's
    // want to take); without one, or when its worker's breaker refuses a new permit, a free one.
    private void HandOver(long now)
    {
        while (_handovers.TryDequeue(out var handover))
        {
            Interlocked.Decrement(ref _pendingPreemptions);
            var workerSlot = handover.Worker;
            if (MostImportantWaiting(out _) is { } queue && TryKeep(ref workerSlot))
            {
                TryGrantHead(queue, handover.Bucket, workerSlot, now);
            }
            else
            {
                workerSlot.Release();
                Slots.Release(handover.Bucket);
            }
        }
    }

    // The handed-over worker slot, with a new breaker permit (its attempt's went back with it),
    // while its worker still takes requests; else a free one (none needed without a router).
    private bool TryKeep(ref WorkerSlot workerSlot)
    {
        if (workerSlot.IsHeld && _snapshot is { } snapshot && workerSlot.TryRenewPermit(snapshot.CircuitBreaker))
        {
            return true;
        }

        workerSlot.Release();
        return TryReserve(out workerSlot);
    }

    // No slot is free and someone waits: for each waiter of the most important class waiting
    // (beyond the preemptions already under way), the admitted request of the least important
    // preemptible class below it that has sent nothing yet is preempted. Under the bucket policy
    // only one whose slot the waiter's class may hold (BucketPolicy.MayTake): a bucket's guarantee
    // to its own class stands. Costs nothing while no preemptible request runs.
    private void Preempt()
    {
        if (Volatile.Read(ref _preemptibleCount) == 0 || _preemptible is not { } cells
            || MostImportantWaiting(out var waiters) is not { ClassModel: { } waiting })
        {
            return;
        }

        while (Volatile.Read(ref _pendingPreemptions) < waiters)
        {
            if (!TryFindVictim(cells, waiting.Priority, waiting, null, out var victim, out var armed))
            {
                return;
            }

            if (victim.TryPreempt(armed))
            {
                Interlocked.Increment(ref _pendingPreemptions);
                victim.Class?.CountPreemption();
            }
        }
    }

    // The least important armed request of a class less important than `priority`: for a waiter
    // here (waiting: its class, whose bucket rules apply), or for a want of the fleet's on
    // one of `fleetWorkers` (a request whose attempt holds that worker's slot fleet-wide).
    private bool TryFindVictim(PreemptionTicket?[] cells, int priority, ClassModel? waiting, string[]? fleetWorkers, [NotNullWhen(true)] out PreemptionTicket? victim, out int armed)
    {
        victim = null;
        armed = 0;
        var high = Math.Min(Volatile.Read(ref _preemptibleHigh), cells.Length);
        for (var i = 0; i < high; i++)
        {
            // The state first: the priority read after it is that use's, or the CAS fails.
            if (Volatile.Read(ref cells[i]) is { } ticket && ticket.State is var state && PreemptionTicket.IsArmedState(state)
                && ticket.ClassPriority > priority && (victim is null || ticket.ClassPriority > victim.ClassPriority)
                && (fleetWorkers is null || (ticket.FleetWorker is { } on && Array.IndexOf(fleetWorkers, on) >= 0))
                && (waiting is null || ticket.SlotBucket == SlotBook.Unbucketed || BucketPolicy.MayTake(this, waiting, ticket.ClassModel!, ticket.SlotBucket)))
            {
                victim = ticket;
                armed = state;
            }
        }

        return victim is not null;
    }

    // [cluster]: a victim here for a want of `priority` on any of `workers` (AdmissionController).
    public bool TryFindFleetVictim(string[] workers, int priority, out FleetVictim victim)
    {
        victim = default;
        if (Volatile.Read(ref _preemptibleCount) == 0 || _preemptible is not { } cells
            || !TryFindVictim(cells, priority, null, workers, out var ticket, out var armed))
        {
            return false;
        }

        victim = new FleetVictim(ticket, armed);
        return true;
    }

    // [cluster]: the book has a free slot, but no worker has room as this replica last read the
    // store, and no request here can be preempted for the most important class waiting. While a
    // less important class is preemptible, that class's waiters (beyond the preemptions under way
    // here) go on to wait for a worker's slot fleet-wide, with a worker slot here taken past that
    // view (the store still caps the worker): there each one's refusal writes a want that a
    // replica holding a preemptible request on the worker answers (SharedWorkerSlots). Bounded by
    // the book and the workers' own slots here.
    private void PassToFleet(long now)
    {
        while (_fleet is not null && MostImportantWaiting(out var waiters) is { ClassModel: { } waiting } queue
            && waiting.Priority < Volatile.Read(ref _leastPreemptible) && waiters > Volatile.Read(ref _pendingPreemptions))
        {
            if (!_policy.TryTakeSlot(this, queue.Level, waiting, out var slotBucket))
            {
                return;
            }

            if (!TryReserve(out var workerSlot, beyondFleet: true))
            {
                Slots.Release(slotBucket);
                return;
            }

            if (!TryGrantHead(queue, slotBucket, workerSlot, now))
            {
                return;
            }
        }
    }

    // The fairest queue of the most important class with a waiter, and how many wait in that class.
    private TenantQueue? MostImportantWaiting(out int waiters)
    {
        TenantQueue? best = null;
        waiters = 0;
        foreach (var level in BusyLevels())
        {
            foreach (var queue in level.Queues)
            {
                if (queue.ClassModel is not { } classModel || queue.Count == 0)
                {
                    continue;
                }

                var bestPriority = best?.ClassModel!.Priority ?? int.MaxValue;
                if (classModel.Priority < bestPriority)
                {
                    waiters = 0;
                    best = queue;
                }
                else if (classModel.Priority == bestPriority && Fairest.IsFairer(queue, best))
                {
                    best = queue;
                }

                waiters += classModel.Priority == best!.ClassModel!.Priority ? queue.Count : 0;
            }
        }

        return best;
    }

    // Timed-out and cancelled waiters at the queues' heads come off at once, so a storm of
    // timeouts does not hold queue capacity until the next grant.
    // Takes off the heads that ended their wait, and every waiter of a class that protection sheds:
    // a shed class's client gets its 503 now, not after max_queue_wait or a grant on the degraded
    // fleet (perf/RESULTS.md, "Issue 20 (degradation, per-class baselines)"). The shed is as last
    // judged (no clock read); a judgement that sheds a class signals the dispatcher (ShedChanged).
    private void SkipTombstones()
    {
        var protection = Protection.Judged;
        foreach (var level in BusyLevels())
        {
            foreach (var queue in level.Queues)
            {
                var shed = protection.Shed > 0 && protection.ShedIndex(queue.Class.Name) >= 0;
                while (queue.TryPeek(out var head) && (shed || !head.IsPending) && queue.TryDequeue(out var dead))
                {
                    OnQueued(queue, -1);
                    dead.TryShed();
                    dead.ReleaseFromQueue();
                }
            }
        }
    }

    // Protection shed one more class: its waiters are refused at the dispatcher's next round.
    private void ShedChanged()
    {
        if (Waiting > 0)
        {
            Dispatch();
        }
    }

    // Alone: always. In a cluster: the fleet's grant rule (SharedVtc.MayGrant) for the tenant's
    // next request.
    private bool FleetAllows(FairShareAccount tenant, in GrantCharge charge) =>
        _fleet is not { } fleet || fleet.MayGrant(tenant.Name, charge.TenantWeight);

    // The locally fairest tenant is too far ahead fleet-wide: the waiter of its level whose tenant
    // is the fleet's least served here, if the rule lets it have the slot. Without this, a
    // tenant that also reaches other replicas (ahead there, behind here) would keep the slot from
    // the fleet's least-served tenant on this replica, and every replica would leave it. A slot
    // of a bucket (bucket policy) stays with the refused waiter's class, whose range it is in.
    private TenantQueue? FleetsChoice(SharedVtc fleet, TenantQueue refused, int slotBucket)
    {
        TenantQueue? least = null;
        var leastCounter = long.MaxValue;
        foreach (var queue in _levels[refused.Level]!.Queues)
        {
            if (!ReferenceEquals(queue, refused) && queue.Count > 0
                && (slotBucket == SlotBook.Unbucketed || ReferenceEquals(queue.Class, refused.Class))
                && fleet.Tenant(queue.Tenant.Name).Counter is var counter && counter < leastCounter)
            {
                least = queue;
                leastCounter = counter;
            }
        }

        return least is not null && least.TryPeek(out var head) && FleetAllows(least.Tenant, head.Charge) ? least : null;
    }

    // A slot on one of the pool's workers for a grant (none needed without a router). beyondFleet:
    // past this replica's view of the worker's slots fleet-wide (PassToFleet).
    private bool TryReserve(out WorkerSlot slot, bool beyondFleet = false)
    {
        slot = default;
        if (_router is null)
        {
            return true;
        }

        return _pool is { } pool && _snapshot is { } snapshot && _router.TryReserve(pool, snapshot, out slot, beyondFleet);
    }

    private AdmissionLease Grant(FairShareAccount tenant, FairShareAccount classAccount, int slotBucket, GrantCharge charge)
    {
        charge = charge.At(tenant, classAccount);
        var cost = charge.Admission;
        tenant.Charge(cost / charge.TenantWeight);
        classAccount.Charge(cost / charge.ClassWeight);
        tenant.AddInFlight(1);
        classAccount.AddInFlight(1);
        var now = _time.GetTimestamp(); // one clock read: ~20-30 ns each on a KVM guest's kvm-clock
        Grants.Record(flagged: false, now / _time.TimestampFrequency);
        return new AdmissionLease(this, tenant, classAccount, slotBucket, charge, now, now);
    }

    // The waiter's own charge, with the weights of the snapshot its request runs on: the same
    // the settlement divides by, so that a refund returns exactly what was charged.
    // A requeued request (prepaid) was charged at its first grant.
    private void OnGranted(TenantQueue queue, in GrantCharge charge, long now, bool prepaid)
    {
        var cost = prepaid ? 0 : charge.Admission;
        queue.Tenant.Charge(cost / charge.TenantWeight);
        queue.Class.Charge(cost / charge.ClassWeight);
        queue.Tenant.AddInFlight(1);
        queue.Class.AddInFlight(1);
        queue.Class.LastGrantedTenant = queue.Tenant.Counter;
        Volatile.Write(ref _classFloor, queue.Class.Counter);
        Grants.Record(flagged: false, now / _time.TimestampFrequency);
    }

    // Waiting counts on every level they concern. An account that becomes backlogged is lifted
    // to the least counter among the backlogged (VTC): tenants within their class, classes among
    // classes; with nobody backlogged, to the counter of the last one granted.
    private void OnQueued(TenantQueue queue, int delta)
    {
        Interlocked.Add(ref _waiting, delta);
        _levels[queue.Level]!.AddWaiting(delta);
        if (queue.Class.AddWaiting(delta) == 1 && delta > 0)
        {
            queue.Class.LiftTo(LeastBacklogged(_classes.Values, queue.Class) ?? Volatile.Read(ref _classFloor));
        }

        if (queue.Tenant.AddWaiting(delta) == 1 && delta > 0)
        {
            queue.Tenant.LiftTo(LeastBackloggedTenant(queue) ?? queue.Class.LastGrantedTenant);
        }
    }

    private static double? LeastBacklogged(IEnumerable<FairShareAccount> accounts, FairShareAccount except)
    {
        double? least = null;
        foreach (var account in accounts)
        {
            if (!ReferenceEquals(account, except) && account.Waiting > 0 && (least is null || account.Counter < least))
            {
                least = account.Counter;
            }
        }

        return least;
    }

    private double? LeastBackloggedTenant(TenantQueue queue)
    {
        double? least = null;
        foreach (var level in BusyLevels())
        {
            foreach (var other in level.Queues)
            {
                if (ReferenceEquals(other.Class, queue.Class) && !ReferenceEquals(other.Tenant, queue.Tenant)
                    && other.Tenant.Waiting > 0 && (least is null || other.Tenant.Counter < least))
                {
                    least = other.Tenant.Counter;
                }
            }
        }

        return least;
    }

    private QueueLevel Level(int index)
    {
        var level = Volatile.Read(ref _levels[index]);
        if (level is not null)
        {
            return level;
        }

        Interlocked.CompareExchange(ref _levels[index], new QueueLevel(index), null);
        var count = Volatile.Read(ref _levelCount);
        while (count <= index)
        {
            var found = Interlocked.CompareExchange(ref _levelCount, index + 1, count);
            if (found == count)
            {
                break;
            }

            count = found;
        }

        return _levels[index]!;
    }

    // Seconds until the requests ahead should have been served at the recent grant rate; with
    // no grant in 10 s, the class's whole queue wait (nothing suggests sooner).
    private int RetryAfter(int ahead, ClassModel classModel)
    {
        var rate = GrantRate();
        var seconds = rate > 0 ? Math.Ceiling(ahead / rate) : Math.Ceiling(classModel.MaxQueueWait.TotalSeconds);
        return (int)Math.Clamp(seconds, 1, 300);
    }
}
