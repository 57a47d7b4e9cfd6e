using AotProxy.Configuration;

namespace AotProxy.Routing;

// Owns the worker states across reloads and publishes immutable WorkerSets for the hot path.
internal sealed class WorkerRegistry
{
    private readonly Lock _applyLock = new();
    private volatile WorkerSet _set = WorkerSet.Empty;

    public WorkerSet Current => _set;

    public event Action? Changed;

    // Called at startup and on every applied reload. Same name and URL: the state carries over
    // (its model is updated). Gone: the state is marked removed and dropped from the set, while
    // requests that hold it finish.
    public void Apply(GatewaySnapshot snapshot)
    {
        lock (_applyLock)
        {
            var previous = _set.Workers;
            var next = new WorkerState[snapshot.Workers.Length];
            for (var i = 0; i < next.Length; i++)
            {
                var model = snapshot.Workers[i];
                var existing = Array.Find(previous, w => w.Model.SameIdentity(model));
                if (existing is null)
                {
                    next[i] = new WorkerState(model);
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

            _set = new WorkerSet(next);
        }

        Changed?.Invoke();
    }

    // After discovery changed a worker's models, or a drain flag flipped.
    public void Rebuild()
    {
        lock (_applyLock)
        {
            _set = new WorkerSet(_set.Workers);
        }

        Changed?.Invoke();
    }

    public PickOutcome TryPick(string model, out WorkerState? worker)
    {
        worker = null;
        if (!_set.Pools.TryGetValue(model, out var pool))
        {
            return PickOutcome.UnknownModel;
        }

        worker = pool.PickRoundRobin();
        return worker is null ? PickOutcome.NoRoutableWorker : PickOutcome.Picked;
    }

    public void ScavengeIdleConnections()
    {
        foreach (var worker in _set.Workers)
        {
            _ = worker.Connections.ScavengeAsync().AsTask();
        }
    }

    public bool HasRoutableWorker()
    {
        foreach (var worker in _set.Workers)
        {
            if (worker.IsRoutable && !worker.Models.IsEmpty)
            {
                return true;
            }
        }

        return false;
    }
}
