using System.Collections.Frozen;
using AotProxy.Configuration;

namespace AotProxy.Routing;

// Owns the worker states across reloads and publishes immutable WorkerSets for the hot path.
internal sealed class WorkerRegistry(TimeProvider time)
{
    private readonly Lock _applyLock = new();
    private volatile WorkerSet _set = WorkerSet.Empty;
    private volatile CircuitBreakerModel? _breaker;
    private volatile FrozenSet<string> _served = FrozenSet<string>.Empty;

    public WorkerSet Current => _set;

    public event Action? Changed;

    // Called at startup and on every applied reload. Same name and URL: the state carries over
    // (its model is updated). Gone: the state is marked removed and dropped from the set, while
    // requests that hold it finish.
    public void Apply(GatewaySnapshot snapshot)
    {
        lock (_applyLock)
        {
            _breaker = snapshot.CircuitBreaker;
            var previous = _set.Workers;
            var next = new WorkerState[snapshot.Workers.Length];
            for (var i = 0; i < next.Length; i++)
            {
                var model = snapshot.Workers[i];
                var existing = Array.Find(previous, w => w.Model.SameIdentity(model));
                if (existing is null)
                {
                    next[i] = new WorkerState(model, time);
                }
                else
                {
                    existing.Update(model);
                    next[i] = existing;
                }
            }

            foreach (var old in previous)
            {
                if (Array.IndexOf(next, old) < 0)
                {
                    old.Removed = true;
                    _ = old.Connections.CloseAsync().AsTask();
                }
            }

            Publish(new WorkerSet(next));
        }

        Changed?.Invoke();
    }

    // After discovery changed a worker's models (drain, health and breakers are read at pick time).
    public void Rebuild()
    {
        lock (_applyLock)
        {
            Publish(new WorkerSet(_set.Workers));
        }

        Changed?.Invoke();
    }

    public void ScavengeIdleConnections()
    {
        foreach (var worker in _set.Workers)
        {
            _ = worker.Connections.ScavengeAsync().AsTask();
        }
    }

    // Whether some worker served the model since the gateway started: listed in its `models`, or
    // reported by its GET /v1/models, even if that worker is gone now (a reload removed it).
    public bool HasServed(string model) => _served.Contains(model);

    // Whether a worker configured without `models` has not reported its models yet (down since
    // the start, or its discovery still running): a model no pool has may be one of its.
    public bool AwaitsModels()
    {
        foreach (var worker in _set.Workers)
        {
            if (worker.NeedsDiscovery && worker.DiscoveredModels.IsEmpty)
            {
                return true;
            }
        }

        return false;
    }

    // Under _applyLock. The served models only grow: a model stays known (503 while no worker
    // takes it) until the gateway restarts.
    private void Publish(WorkerSet set)
    {
        var served = _served;
        if (!set.Pools.Keys.All(served.Contains))
        {
            _served = served.Union(set.Pools.Keys).ToFrozenSet(StringComparer.Ordinal);
        }

        _set = set;
    }

    // Routable by the breaker thresholds of the last applied snapshot.
    public bool IsRoutable(WorkerState worker) => _breaker is { } breaker && worker.IsRoutable(breaker);

    // /ready: some worker with a known model takes requests.
    public bool HasRoutableWorker()
    {
        foreach (var worker in _set.Workers)
        {
            if (IsRoutable(worker) && !worker.Models.IsEmpty)
            {
                return true;
            }
        }

        return false;
    }
}
