using AotProxy.Cluster;
using AotProxy.Configuration;

namespace AotProxy.Routing;

// One request's place on a worker: one of its slots (max_concurrency, or adapted) and the
// breaker's permit for the attempt that uses it. Admission takes one with every grant, so that a
// granted request always has a worker with room behind it; the router moves it to the worker it
// picks; the request gives it back when its attempt on that worker ends. A mutable struct that
// lives in one place (the request's locals) and moves by ref: a copy must not be released twice.
internal struct WorkerSlot(WorkerState worker, BreakerPermit permit)
{
    public WorkerState? Worker { get; private set; } = worker;

    // Denied once handed to the attempt that uses it (which then reports it to the breaker).
    public BreakerPermit Permit { get; private set; } = permit;

    // With [cluster]: what lets it be used fleet-wide (SharedWorkerSlots), given back with it.
    public SlotGrant Grant { get; private set; }

    public readonly bool IsHeld => Worker is not null;

    public void Granted(SlotGrant grant) => Grant = grant;

    // The permit, for the attempt about to use it; the slot itself stays held.
    public BreakerPermit TakePermit()
    {
        var permit = Permit;
        Permit = BreakerPermit.Denied;
        return permit;
    }

    // Handed over to another request (a preemption, Admission/SlotHandover): a permit for its
    // attempt, the one before went back with the cancelled attempt. False when the worker takes no
    // requests now (the caller gives the slot back).
    public bool TryRenewPermit(CircuitBreakerModel breaker)
    {
        if (Worker is not { } worker || !worker.IsRoutable(breaker))
        {
            return false;
        }

        if (Permit == BreakerPermit.Denied)
        {
            Permit = worker.Breaker.TryAcquire(breaker);
        }

        return Permit != BreakerPermit.Denied;
    }

    // Gives the slot back (and a permit no attempt used); nothing when none is held. toFleet: its
    // request was preempted for a want of the fleet's: a Shared grant goes back to the store (kept
    // there for that want), not to this replica's lease.
    public void Release(bool toFleet = false)
    {
        if (Worker is not { } worker)
        {
            return;
        }

        worker.Breaker.OnAbandoned(Permit);
        if (toFleet && Grant == SlotGrant.Shared)
        {
            worker.Shared!.ReleaseToFleet();
        }
        else if (Grant != SlotGrant.None)
        {
            // Before the local slot: a local waiter that takes it asks the store after this release.
            worker.Shared!.Release(Grant);
        }

        worker.ReleaseSlot();
        this = default;
    }
}
