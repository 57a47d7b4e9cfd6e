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
// slots of a worker that came back even when no request arrives or finishes meanwhile.
internal sealed class AdmissionController(WaiterPool waiters, GatewayMetrics metrics, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, ModelAdmission> _models = new(StringComparer.Ordinal);

    public IEnumerable<ModelAdmission> Models => _models.Values;

    public ValueTask<AdmissionResult> AdmitAsync(
        GatewaySnapshot snapshot, WorkerPool pool, TenantModel tenant, ClassModel classModel, int priority, long promptTokens, CancellationToken cancellationToken)
    {
        var model = _models.GetOrAdd(pool.Model, static (name, state) => new ModelAdmission(name, state.Scheduler, state.Waiters, state.Time), (Scheduler: snapshot.Scheduler, Waiters: waiters, Time: time));
        var request = new AdmissionRequest(tenant, classModel, priority, promptTokens, snapshot.Scheduler, pool.Capacity(snapshot));
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
            model.Refresh(capacity);
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
