using AotProxy.Configuration;

namespace AotProxy.Admission;

// One tenant's waiters in one queue level (a bucket, or a priority), with the accounts its
// grants are charged to. A sub-queue per tenant is what lets the scheduler pick the fairest
// tenant instead of the oldest request. Only the dispatcher dequeues: it is the one consumer,
// so the head it peeked is the head it takes.
internal sealed class TenantQueue(int level, FairShareAccount tenant, FairShareAccount classAccount, int capacity)
{
    private volatile ClassModel? _class;
    private int _tenantWeight = 1;

    public int Level { get; } = level;

    public FairShareAccount Tenant { get; } = tenant;

    public FairShareAccount Class { get; } = classAccount;

    public BoundedRing<AdmissionWaiter> Ring { get; } = new(capacity);

    // The class and the tenant's weight as the latest enqueue saw them (reloads may change them).
    public ClassModel? ClassModel => _class;

    public int TenantWeight => Volatile.Read(ref _tenantWeight);

    public void Update(ClassModel classModel, int tenantWeight)
    {
        _class = classModel;
        Volatile.Write(ref _tenantWeight, tenantWeight);
    }
}
