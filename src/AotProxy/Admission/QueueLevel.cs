namespace AotProxy.Admission;

// One bucket or priority level of a model pool: its tenants' sub-queues, copy-on-write so that
// the dispatcher iterates a plain array while a new tenant's first request adds one.
internal sealed class QueueLevel(int index)
{
    private readonly Lock _addLock = new();
    private volatile TenantQueue[] _queues = [];
    private int _waiting;

    public int Index { get; } = index;

    public TenantQueue[] Queues => _queues;

    public int Waiting => Volatile.Read(ref _waiting);

    public void AddWaiting(int delta) => Interlocked.Add(ref _waiting, delta);

    // Ticks the longest waiter at a sub-queue head (of className's class, when given) has waited;
    // 0 when none waits. Read off the dispatcher's thread, so a head taken meanwhile may report a
    // newer waiter: fine for stats and for protection's evidence (ClassProtection).
    public long OldestWait(long now, string? className = null)
    {
        var oldest = 0L;
        foreach (var queue in _queues)
        {
            if ((className is null || string.Equals(queue.Class.Name, className, StringComparison.Ordinal)) && queue.TryPeek(out var head) && head.IsPending)
            {
                oldest = Math.Max(oldest, now - head.EnqueuedAt);
            }
        }

        return oldest;
    }

    public TenantQueue GetOrAdd(FairShareAccount tenant, FairShareAccount classAccount, int capacity)
    {
        var found = Find(_queues, tenant, classAccount);
        if (found is not null)
        {
            return found;
        }

        lock (_addLock)
        {
            var queues = _queues;
            found = Find(queues, tenant, classAccount);
            if (found is null)
            {
                found = new TenantQueue(Index, tenant, classAccount, capacity);
                _queues = [.. queues, found];
            }

            return found;
        }
    }

    private static TenantQueue? Find(TenantQueue[] queues, FairShareAccount tenant, FairShareAccount classAccount)
    {
        foreach (var queue in queues)
        {
            if (ReferenceEquals(queue.Tenant, tenant) && ReferenceEquals(queue.Class, classAccount))
            {
                return queue;
            }
        }

        return null;
    }
}
