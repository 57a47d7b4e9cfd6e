using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AotProxy.Admin;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Threading;

namespace AotProxy.Admission;

// The admit stage: one ModelAdmission per model pool (kept across reloads, so waiters and
// fair-share counters survive them), capacity from the pool's routable workers, and the
// admission metrics. A pool's capacity is also refreshed on a timer, so that waiters take the
// slots of a worker that came back even when no request arrives or finishes meanwhile. Grants
// take their worker slots through the router (ModelAdmission).
internal sealed class AdmissionController(WaiterPool waiters, GatewayMetrics metrics, TimeProvider time, Router router)
{
    private readonly ConcurrentDictionary<string, ModelAdmission> _models = new(StringComparer.Ordinal);

    public IEnumerable<ModelAdmission> Models => _models.Values;

    public ValueTask<AdmissionResult> AdmitAsync(
        GatewaySnapshot snapshot, WorkerPool pool, TenantModel tenant, ClassModel classModel, int priority, long promptTokens, CancellationToken cancellationToken)
    {
        var model = _models.GetOrAdd(pool.Model, static (name, state) => new ModelAdmission(name, state.Scheduler, state.Waiters, state.Time, state.Router), (Scheduler: snapshot.Scheduler, Waiters: waiters, Time: time, Router: router));
        var request = new AdmissionRequest(tenant, classModel, priority, promptTokens, snapshot.Scheduler, pool.Capacity(snapshot), pool, snapshot);
        var pending = model.AdmitAsync(request, cancellationToken);
        if (pending.IsCompletedSuccessfully)
        {
            Record(classModel.Name, pending.Result);
            return pending;
        }

        return RecordAsync(classModel.Name, pending);
    }

    // Every pool's capacity as its workers stand now; waiters take what grew.
    public void Refresh(WorkerSet workers, GatewaySnapshot snapshot)
    {
        foreach (var model in _models.Values)
        {
            var capacity = workers.Pools.TryGetValue(model.Model, out var pool) ? pool.Capacity(snapshot) : 0;
            model.Refresh(capacity, pool, snapshot);
        }
    }

    // A request's attempt ended (or it ended without one): its worker slot goes back, and waiters
    // of other models that worker serves may take it. Nothing when none is held.
    public void ReleaseSlot(ref WorkerSlot slot)
    {
        if (slot.Worker is { } worker)
        {
            slot.Release();
            OnSlotFreed(worker);
        }
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

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<AdmissionResult> RecordAsync(string classModel, ValueTask<AdmissionResult> pending)
    {
        var result = await pending.ConfigureAwait(false);
        Record(classModel, result);
        metrics.ObserveQueueWait(classModel, result.Waited);
        return result;
    }

    private void Record(string classModel, in AdmissionResult result) => metrics.CountAdmission(classModel, result.Decision);
}
