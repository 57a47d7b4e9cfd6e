using AotProxy.Configuration;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// One worker's slots as this replica sees them fleet-wide (SharedWorkerSlots): its keys, this
// replica's lease on it (SlotLease: the slots it holds in the store, and those its requests use),
// the free slots as last read (max_concurrency - running, from the
// last grant's answer, release message or heartbeat read) and, while the store does not answer,
// the requests sent on this replica's share alone. Kept per worker name for the process's life,
// so a reload that rebuilds the worker's state keeps its lease.
internal sealed class SharedWorker
{
    // Not read yet: no local cap until the first answer says how full the worker is.
    private const int Unknown = int.MaxValue / 2;

    private readonly SharedWorkerSlots _owner;
    private TaskCompletionSource? _wake;
    private RedisValue[]? _grantArgs;

    // The grant's ARGV per priority (ClassModel.MaxPriority + 1 of them), for requests that may
    // preempt nobody: the same from grant to grant in the steady state.
    private readonly RedisValue[]?[] _grantArgsAt = new RedisValue[]?[ClassModel.MaxPriority + 1];
    private RedisKey[]? _keys;
    private int _blockGrant;
    private readonly RedisValue[] _releaseOne;
    private int _free = Unknown;
    private int _localShare;
    private int _releases;

    public SharedWorker(SharedWorkerSlots owner, string name)
    {
        _owner = owner;
        Name = name;
        Field = ClusterKeys.WorkerRunning(name);
        Channel = ClusterKeys.Release(name);
        _releaseOne = [Field, Channel, 1];
    }

    public string Name { get; }

    public RedisValue Field { get; }

    public RedisValue Channel { get; }

    // [worker hash, this replica's reservations, the worker's wants that may preempt]: the grant's
    // and release's KEYS (the release reads the first two), built at the first grant, which comes
    // after the replica is named (SharedWorkerSlots.Start).
    public RedisKey[] Keys => Volatile.Read(ref _keys) ?? (_keys = [ClusterKeys.Worker(Name), _owner.ReservationsKey, ClusterKeys.PriorityWants(Name)]);

    public SlotLease Lease { get; } = new();

    // The release's ARGV for `slots` given back: the one of a request's release kept.
    public RedisValue[] ReleaseArgs(int slots) => slots == 1 ? _releaseOne : [Field, Channel, slots];

    // The grant's ARGV (SharedWorkerSlots.GrantScript), rebuilt only when one of them changes: in
    // the steady state the block asked for is the same from grant to grant. A request whose want
    // may preempt (member) has its own, with the names of its pool's workers (PoolWant.Names).
    public RedisValue[] GrantArgs(int max, long waitMs, long wantMs, int want, int members, int priority = 0, string? member = null, RedisValue pool = default)
    {
        priority = Math.Clamp(priority, 0, ClassModel.MaxPriority);
        if (member is not null)
        {
            RedisValue[] own = [max, Field, waitMs, want, members, Channel, wantMs, priority, member, ClusterKeys.ClaimPrefix, pool.IsNull ? RedisValue.EmptyString : pool];
            Volatile.Write(ref _grantArgs, own); // LastMax reads the max of the last grant asked for
            return own;
        }

        var args = Volatile.Read(ref _grantArgsAt[priority]);
        if (args is null || (int)args[0] != max || (int)args[3] != want || (int)args[4] != members)
        {
            Volatile.Write(ref _grantArgsAt[priority], args = [max, Field, waitMs, want, members, Channel, wantMs, priority, RedisValue.EmptyString, ClusterKeys.ClaimPrefix, RedisValue.EmptyString]);
            Volatile.Write(ref _grantArgs, args);
        }

        return args;
    }

    // At most one grant for a block in flight per worker here; the requests that come meanwhile
    // wait for its answer and take from the block (SharedWorkerSlots.AcquireAsync), or, while this
    // lease owes a slot elsewhere, ask for one slot each.
    public bool TryStartBlockGrant() => Interlocked.CompareExchange(ref _blockGrant, 1, 0) == 0;

    public bool BlockGrantInFlight => Volatile.Read(ref _blockGrant) == 1;

    // The block's answer is in: the requests that waited for it look at the lease again, unless it
    // was a refusal: then they wait for a release like the request that asked (woken by its own
    // refusal, that request asked again at once, and its second refusal published a second want).
    public void EndBlockGrant(bool refused)
    {
        Volatile.Write(ref _blockGrant, 0);
        if (!refused)
        {
            Wake();
        }
    }

    // The max_concurrency of the last grant asked for (what a running count read is measured against).
    // (_grantArgs: the last ARGV built, of any priority.)
    public int LastMax => Volatile.Read(ref _grantArgs) is { } args ? (int)args[0] : Unknown;

    // The slots this replica holds on the worker in the store: its lease, used or not.
    public int Held => Lease.Leased;

    // The slots this replica may hold now: its lease and the free slots as last read. The
    // local scheduler takes no slot on the worker beyond it (WorkerState.TryTakeSlot), so waiters
    // stay in their admission queues while the worker is full elsewhere.
    public int Room => Held + Volatile.Read(ref _free);

    public int LocalShareInFlight => Volatile.Read(ref _localShare);

    // Slots free fleet-wide as last read, or not read yet (a worker this replica asked nothing of:
    // its release messages are read against no max): worth a grant for a want on the pool, whose
    // refusal reads it.
    public bool HasFree => Volatile.Read(ref _free) > 0;

    // `slots` granted, one of them for the request that asked; the others wake a request here
    // that waits for the worker.
    public void OnGranted(int slots, long running, int max)
    {
        Lease.Granted(slots);
        Volatile.Write(ref _free, (int)Math.Max(0, max - running));
        if (slots > 1)
        {
            Wake();
        }
    }

    // Refused: the worker is full fleet-wide (running as the script read it).
    public void OnRefused(long running, int max) => Volatile.Write(ref _free, (int)Math.Max(0, max - running));

    // The store did not answer: no local cap from a count that may be stale; the local share decides.
    public void OnStoreDown() => Volatile.Write(ref _free, Unknown);

    // A release message or a heartbeat's read. True when slots came free that were not free before.
    public bool OnRunning(long running, int max)
    {
        var free = (int)Math.Max(0, max - running);
        var before = Interlocked.Exchange(ref _free, free);
        if (free > 0)
        {
            Wake();
        }

        return free > before;
    }

    // A slot the worker held back for a want elsewhere is anyone's now (that want was served on
    // another worker of its pool): the last read's "none free" no longer holds, and the requests
    // here waiting for it ask again (the next answer reads it).
    public void OnUnheld()
    {
        Interlocked.CompareExchange(ref _free, Unknown, 0);
        Wake();
    }

    // While the store is down: one of `share` slots (LocalShare), counted on this replica only.
    public bool TryTakeLocalShare(int share)
    {
        var taken = Volatile.Read(ref _localShare);
        while (taken < share)
        {
            var found = Interlocked.CompareExchange(ref _localShare, taken + 1, taken);
            if (found == taken)
            {
                return true;
            }

            taken = found;
        }

        return false;
    }

    // WorkerSlot.Release, for a slot that holds a grant: to the lease (the slots it no longer keeps
    // back to the fleet), or to the local share.
    public void Release(SlotGrant grant)
    {
        switch (grant)
        {
            case SlotGrant.Shared:
                GiveBack(Lease.Release(_owner.Now));

                if (Lease.Used < Lease.Leased)
                {
                    Wake(); // a request here waiting for the worker takes the slot kept
                }

                break;
            case SlotGrant.LocalShare:
                Interlocked.Decrement(ref _localShare);
                Wake();
                break;
        }
    }

    // A request preempted for another replica's want (ModelAdmission.Yield): its slot leaves the
    // lease and goes back to the store, where the grant script keeps it for the want.
    public void ReleaseToFleet()
    {
        Lease.GiveUp();
        _owner.Release(this, 1);
    }

    // Every leased slot no request uses goes back to the store (idle for a heartbeat, drained,
    // breaker open).
    public void GiveBackUnused() => GiveBack(Lease.GiveBackUnused());

    // The heartbeat: the lease above the peak use since the previous one goes back (SlotLease.Trim).
    public void OnHeartbeat() => GiveBack(Lease.Trim());

    // Another replica was refused a slot of the worker (its "want"): one slot is owed until `until`
    // (the gateway's clock), given back now if the lease has one unused, else by the next release.
    public void OnWanted(long until) => GiveBack(Lease.Wanted(_owner.Now, until));

    // The replicas that were refused have been granted: releases keep their slots again.
    public void OnServed() => Lease.Served();

    // The resync after an outage or an empty restart: the lease dropped to what is used, which is
    // then this replica's part in the store (HeldParts).
    public int DropLease()
    {
        Lease.GiveBackUnused();
        return Lease.Leased;
    }

    // Counts the wake-ups: read before asking the store, and handed to NextRelease after a
    // refusal, so that a release between the answer and the wait is not missed.
    public int Releases => Volatile.Read(ref _releases);

    // Completes when a slot may have come free (a release here or elsewhere) since `seen` was read
    // (at once if one came already). Allocates only when a request has to wait.
    public Task NextRelease(int seen)
    {
        var wake = Volatile.Read(ref _wake);
        if (wake is null)
        {
            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wake = Interlocked.CompareExchange(ref _wake, created, null) ?? created;
        }

        // After the source is in place: a Wake from now on completes it, one before has counted.
        return Volatile.Read(ref _releases) != seen ? Task.CompletedTask : wake.Task;
    }

    public void Wake()
    {
        Interlocked.Increment(ref _releases);
        Interlocked.Exchange(ref _wake, null)?.TrySetResult();
    }

    // `slots` the lease no longer keeps, back to the store in one release script (none: no call).
    private void GiveBack(int slots)
    {
        if (slots > 0)
        {
            _owner.Release(this, slots);
        }
    }
}
