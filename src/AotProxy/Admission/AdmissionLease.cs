using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Admission;

// One admitted request's slot. The handler releases it exactly once, in a finally: completion,
// upstream error and client abort all go through that one call. Usage, when the response
// reported it, settles the fair-share charge (admission charged the prompt estimate).
// arrivedAt: when the request first queued (or was admitted at once); a requeue keeps it for aging.
internal readonly struct AdmissionLease(ModelAdmission model, FairShareAccount tenant, FairShareAccount classAccount, int slotBucket, GrantCharge charge, long grantedAt, long arrivedAt)
{
    public bool IsHeld => model is not null;

    // [cluster]: the fleet's counter holds its charge (FleetTurnAsync gave it a turn).
    public bool OnFleet => charge.OnFleet;

    // The lease after its turn on the fleet's workers, to keep in its place: its settlement goes to
    // the fleet's counter too.
    public AdmissionLease Turned => new(model!, tenant, classAccount, slotBucket, charge with { OnFleet = true }, grantedAt, arrivedAt);

    // One upstream attempt's outcome for the pool's protection (ForwardingStage, once per attempt,
    // a retried one too), with, for a stream, the first token its client waited for.
    public void Observe(AttemptOutcome outcome, TimeSpan? firstToken) => model?.Protection.Record(classAccount.Name, outcome, firstToken);

    // Where the request awaits its first token, for protection to judge by its age (null: off).
    public PendingFirstTokens? PendingFirstTokens => model?.Protection.Pending(classAccount.Name);

    // streamedChunks: the content chunks StreamedCharge already charged the local counters.
    public void Release(Usage? usage, long streamedChunks = 0) =>
        model?.Release(tenant, classAccount, slotBucket, charge, usage, grantedAt, streamedChunks);

    // The stream's chunks charge this lease's tenant and class as they are relayed, and once it
    // is Turned (started again then, before any chunk), the fleet's counter too.
    public void StartStream(StreamedCharge streamed)
    {
        if (model is not null)
        {
            streamed.Start(tenant, classAccount, charge, charge.OnFleet ? model.Fleet?.Tenant(tenant.Name) : null);
        }
    }

    // Preemption before the first byte: the request of a preemptible class is seen by the pool's
    // dispatcher until Unregister (AdmissionStage.Release, or Yield).
    public void Register(PreemptionTicket ticket, int classPriority, ClassModel? classModel = null) => model?.Register(ticket, classPriority, classAccount, slotBucket, classModel);

    public void Unregister(PreemptionTicket ticket) => model?.Unregister(ticket, ticket.IsPreempted);

    // Preempted: the slot, and the worker slot its cancelled attempt held (taken from it), go to
    // the waiter it was preempted for, and the request waits again at the head of its queue with
    // this lease's charge (counted once; with [cluster] its fleet charge too, OnFleet), for a new lease.
    // updates: a stream's queue updates, reported again while it waits (null: it did not ask).
    public ValueTask<AdmissionResult> RequeueAsync(PreemptionTicket ticket, ClassModel classModel, int priority, ref WorkerSlot workerSlot, QueueUpdates? updates, CancellationToken cancellationToken)
    {
        model!.Yield(ticket, tenant, classAccount, slotBucket, ref workerSlot);
        return model.RequeueAsync(tenant, classAccount, classModel, priority, charge, arrivedAt, updates, cancellationToken);
    }

    // [cluster]: waits for the request's turn on the fleet's workers (SharedVtc.TakeTurnAsync),
    // at most maxWait; true at once alone. handedOver: it holds a preempted request's worker slot
    // with the fleet's grant, whose turn was given: its charge goes on now, without waiting.
    public ValueTask<bool> FleetTurnAsync(TimeSpan maxWait, CancellationToken cancellationToken, bool handedOver = false) =>
        model?.FleetTurnAsync(tenant, charge, maxWait, cancellationToken, handedOver) ?? new(true);

    // [cluster]: after its turn, the request stopped waiting for a worker's slot fleet-wide.
    public void LeftForSlot() => model?.Fleet?.LeftForSlot(tenant.Name);
}
