using AotProxy.Configuration;

namespace AotProxy.Admission;

// One tenant's waiters in one queue level (a bucket, or a priority), with the accounts its
// grants are charged to. A sub-queue per tenant is what lets the scheduler pick the fairest
// tenant instead of the oldest request. Only the dispatcher dequeues: it is the one consumer,
// so the head it peeked is the head it takes.
internal sealed class TenantQueue(int level, FairShareAccount tenant, FairShareAccount classAccount, int capacity)
{
    private volatile ClassModel? _class;

    public int Level { get; } = level;

    public FairShareAccount Tenant { get; } = tenant;

    public FairShareAccount Class { get; } = classAccount;

    public BoundedRing<AdmissionWaiter> Ring { get; } = new(capacity);

    // The class as the latest enqueue saw it (reloads and time windows may change it). What a
    // grant charges comes with each waiter (AdmissionWaiter.Charge), not from here.
    public ClassModel? ClassModel => _class;

    public void Update(ClassModel classModel) => _class = classModel;
}
