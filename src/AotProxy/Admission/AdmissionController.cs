using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Threading;

namespace AotProxy.Admission;

// The admit stage: one ModelAdmission per model pool (kept across reloads, so waiters and
// fair-share counters survive them) and the admission metrics. Each pool's capacity, workers and
// scheduler come from the last config and worker set GatewayState applied, and its capacity
// again whenever the workers' state changes what they offer (CapacitySignal: health, breakers,
// drains, adaptive slots), so that waiters take the slots of a worker that came back at once.
// Requests only read it. Grants take their worker slots through the router (ModelAdmission).
internal sealed class AdmissionController
{
    private readonly ConcurrentDictionary<string, ModelAdmission> _models = new(StringComparer.Ordinal);
    private readonly Lock _applyLock = new();
    private readonly WaiterPool _waiters;
    private readonly AdmissionTelemetry _telemetry;
    private readonly TimeProvider _time;
    private readonly Router _router;
    private WorkerSet _workers = WorkerSet.Empty;
    private GatewaySnapshot? _snapshot;
    private SharedFairShare? _fleet;

    public AdmissionController(WaiterPool waiters, AdmissionTelemetry telemetry, TimeProvider time, Router router, CapacitySignal? capacity = null)
    {
        _waiters = waiters;
        _telemetry = telemetry;
        _time = time;
        _router = router;
        capacity?.Connect(RefreshCapacity);
    }

    public IEnumerable<ModelAdmission> Models => _models.Values;

    public ValueTask<AdmissionResult> AdmitAsync(
        WorkerPool pool, TenantModel tenant, ClassModel classModel, int priority, long promptTokens, long maxTokens, CancellationToken cancellationToken, QueueUpdates? updates = null)
    {
        var model = _models.TryGetValue(pool.Model, out var known) ? known : Add(pool);
        var pending = model.AdmitAsync(new AdmissionRequest(tenant, classModel, priority, promptTokens, maxTokens, updates), cancellationToken);
        if (pending.IsCompletedSuccessfully)
        {
            Record(classModel.Name, pending.Result);
            return pending;
        }

        return RecordAsync(classModel.Name, pending);
    }

    // [cluster]: every model's tenant counters are shared from now on (GatewayHost, at startup).
    public void ShareFairness(SharedFairShare fleet)
    {
        lock (_applyLock)
        {
            _fleet = fleet;
            foreach (var model in _models.Values)
            {
                fleet.Attach(model);
            }
        }
    }

    // GatewayState, before it publishes the view of `workers` and `snapshot`: every pool's
    // workers, scheduler and capacity as they stand there.
    public void Apply(WorkerSet workers, GatewaySnapshot snapshot)
    {
        lock (_applyLock)
        {
            _workers = workers;
            _snapshot = snapshot;
            UpdateAll();
        }

        DispatchAll();
    }

    // The workers' state changed what they offer: every pool's capacity again; waiters take what grew.
    public void RefreshCapacity()
    {
        lock (_applyLock)
        {
            UpdateAll();
        }

        DispatchAll();
    }

    // A request's attempt ended (or it ended without one): its worker slot goes back, and waiters
    // of other models that worker serves may take it. Nothing when none is held.
    // [cluster]: a slot that holds the fleet's grant goes back to the store at once, not to this
    // replica's lease, while another replica has requests queued for a model the worker serves (as
    // its last fair-share flush read them, FleetQueues): they wait in their admission queues for the
    // fleet to have room, with no want to say so, and a kept slot would sit in this lease until the
    // heartbeat trims it, served to this replica's next request first (perf/RESULTS.md, "Issue 20
    // (preemption across replicas, pool-wide wants)").
    public void ReleaseSlot(ref WorkerSlot slot, bool toFleet = false)
    {
        if (slot.Worker is { } worker)
        {
            slot.Release(toFleet || (slot.Grant == SlotGrant.Shared && OthersWaitFor(worker)));
            OnSlotFreed(worker);
        }
    }

    // Another replica has requests queued for a model the worker serves.
    private bool OthersWaitFor(WorkerState worker)
    {
        foreach (var name in worker.Models)
        {
            if (_models.TryGetValue(name, out var model) && model.Fleet is { } fleet && fleet.Others.Waiting > 0)
            {
                return true;
            }
        }

        return false;
    }

    // [cluster]: a want of `priority` on `workers` (its pool: another replica's, or a request's here
    // waiting for a slot fleet-wide): the least important preemptible request of a less important
    // class that holds a slot of one of them fleet-wide and has sent nothing yet, over every pool.
    public bool TryFindFleetVictim(string[] workers, int priority, out FleetVictim victim)
    {
        victim = default;
        foreach (var model in _models.Values)
        {
            if (model.TryFindFleetVictim(workers, priority, out var found) && (victim.Ticket is null || found.Ticket.ClassPriority > victim.Ticket.ClassPriority))
            {
                victim = found;
            }
        }

        return victim.Ticket is not null;
    }

    // The victim, once this replica's claim on the want stands: preempted for the fleet (its slot
    // goes back to the store for the want), counted in its class's preemptions. False when it
    // started meanwhile (or ended).
    public bool PreemptForFleet(in FleetVictim victim)
    {
        if (!victim.Ticket.TryPreempt(victim.Armed, forFleet: true))
        {
            return false;
        }

        victim.Ticket.Class?.CountPreemption();
        return true;
    }

    // A request's attempt on `worker` ended and gave its slot back. A worker that serves several
    // models is in several pools: the others' waiters may take the slot now (each pool's own
    // releases signal only its own dispatcher). One model: its own release signals it.
    public void OnSlotFreed(WorkerState worker)
    {
        var models = worker.Models;
        if (models.Length < 2)
        {
            return;
        }

        foreach (var name in models)
        {
            if (_models.TryGetValue(name, out var model) && model.Waiting > 0)
            {
                model.Dispatch();
            }
        }
    }

    // The first request for a model: its admission, set up from the last applied state (a
    // request's view is never newer), under the lock, so an Apply cannot pass it by. Its pool is
    // the request's when a reload since took the model away: the last pool known for it.
    private ModelAdmission Add(WorkerPool requested)
    {
        lock (_applyLock)
        {
            if (_models.TryGetValue(requested.Model, out var known))
            {
                return known;
            }

            var snapshot = _snapshot ?? throw new InvalidOperationException("Admission has no config applied yet.");
            var model = new ModelAdmission(requested.Model, snapshot.Scheduler, _waiters, _time, _router);
            Update(model, snapshot, requested);
            _fleet?.Attach(model);
            _models[requested.Model] = model;
            return model;
        }
    }

    // Under _applyLock, so that two updates never interleave: each one reads the workers' state
    // as it is when it holds the lock, and the last one leaves the latest.
    private void UpdateAll()
    {
        if (_snapshot is not { } snapshot)
        {
            return;
        }

        foreach (var model in _models.Values)
        {
            Update(model, snapshot, model.Pool);
        }
    }

    // A model no worker serves any more keeps its last pool: requests that started on the view
    // before the reload are served on whichever of its workers still take requests (a worker the
    // reload removed offers nothing; a pool renamed away keeps its worker).
    private void Update(ModelAdmission model, GatewaySnapshot snapshot, WorkerPool? last)
    {
        var pool = _workers.Pools.GetValueOrDefault(model.Model) ?? last;
        model.Apply(pool?.Capacity(snapshot) ?? 0, pool, snapshot);
    }

    // Outside the lock: a grant may run a waiter's continuation on this thread.
    private void DispatchAll()
    {
        foreach (var model in _models.Values)
        {
            if (model.Waiting > 0)
            {
                model.Dispatch();
            }
        }
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<AdmissionResult> RecordAsync(string classModel, ValueTask<AdmissionResult> pending)
    {
        var result = await pending.ConfigureAwait(false);
        Record(classModel, result);
        _telemetry.ObserveQueueWait(classModel, result.Waited);
        return result;
    }

    private void Record(string classModel, in AdmissionResult result) => _telemetry.CountDecision(classModel, result.Decision);
}
