using System.Diagnostics.CodeAnalysis;
using AotProxy.Configuration;

namespace AotProxy.Admission;

// One tenant's waiters in one queue level (a bucket, or a priority), with the accounts its
// grants are charged to. A sub-queue per tenant is what lets the scheduler pick the fairest
// tenant instead of the oldest request. Only the dispatcher dequeues: it is the one consumer,
// so the head it peeked is the head it takes. Requests requeued after a preemption wait in a
// second ring in front of the first (created at the first one): they are the queue's head.
internal sealed class TenantQueue(int level, FairShareAccount tenant, FairShareAccount classAccount, int capacity)
{
    private volatile ClassModel? _class;
    private BoundedRing<AdmissionWaiter>? _front;

    public int Level { get; } = level;

    public FairShareAccount Tenant { get; } = tenant;

    public FairShareAccount Class { get; } = classAccount;

    public BoundedRing<AdmissionWaiter> Ring { get; } = new(capacity);

    // Waiters in both rings (a snapshot).
    public int Count => Ring.Count + (Volatile.Read(ref _front)?.Count ?? 0);

    public bool TryPeek([MaybeNullWhen(false)] out AdmissionWaiter waiter) =>
        (Volatile.Read(ref _front) is { } front && front.TryPeek(out waiter)) || Ring.TryPeek(out waiter);

    // Only the dispatcher dequeues, so the head it peeked is the head it takes.
    public bool TryDequeue([MaybeNullWhen(false)] out AdmissionWaiter waiter) =>
        (Volatile.Read(ref _front) is { } front && front.TryDequeue(out waiter)) || Ring.TryDequeue(out waiter);

    // A preempted request, at the head: ahead of every waiter of the ring, behind those requeued
    // before it. The front holds as many as the ring; beyond, it waits at the ring's tail.
    // ticket: as TryEnqueue's, for its position (at the front: ahead of the ring's head).
    public bool TryRequeue(AdmissionWaiter waiter, out long ticket)
    {
        ticket = Ring.Head;
        var front = Volatile.Read(ref _front);
        if (front is null)
        {
            Interlocked.CompareExchange(ref _front, new BoundedRing<AdmissionWaiter>(Ring.Capacity), null);
            front = _front!;
        }

        return front.TryEnqueue(waiter) || Ring.TryEnqueue(waiter, out ticket);
    }

    // The class as the latest enqueue saw it (reloads and time windows may change it). What a
    // grant charges comes with each waiter (AdmissionWaiter.Charge), not from here.
    public ClassModel? ClassModel => _class;

    public void Update(ClassModel classModel) => _class = classModel;
}
