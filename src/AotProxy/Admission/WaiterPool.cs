namespace AotProxy.Admission;

// Idle AdmissionWaiters, kept in a BoundedRing so that renting and returning take no lock and
// allocate nothing. A waiter returned to a full pool is dropped for the GC (after its timer is
// disposed): the bound caps what a burst leaves behind.
internal sealed class WaiterPool
{
    private readonly BoundedRing<AdmissionWaiter> _idle;

    // capacity is rounded up to a power of two, as the ring's.
    public WaiterPool(TimeProvider time, int capacity)
    {
        ArgumentNullException.ThrowIfNull(time);
        Time = time;
        _idle = new BoundedRing<AdmissionWaiter>(capacity);
    }

    public TimeProvider Time { get; }

    public int Capacity => _idle.Capacity;

    // Idle waiters (approximate while others rent and return).
    public int Count => _idle.Count;

    // A pending waiter owned by two: the caller, and the queue it is about to be enqueued in.
    // EnqueuedAt is now on Time's clock. See AdmissionWaiter for the protocol. prepaid: a request
    // requeued after its preemption, whose grant charges nothing again; arrivedAt: its first
    // arrival then (aging counts from it), null for a first wait (from now).
    public AdmissionWaiter Rent(string tenant, string @class, int bucket, GrantCharge charge, bool prepaid = false, long? arrivedAt = null)
    {
        if (!_idle.TryDequeue(out var waiter))
        {
            waiter = new AdmissionWaiter(this);
        }

        var now = Time.GetTimestamp();
        waiter.Start(tenant, @class, bucket, charge, now, prepaid, arrivedAt ?? now);
        return waiter;
    }

    internal void Return(AdmissionWaiter waiter)
    {
        if (!_idle.TryEnqueue(waiter))
        {
            waiter.DisposeTimer();
        }
    }
}
