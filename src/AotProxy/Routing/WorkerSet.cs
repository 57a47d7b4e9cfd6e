using System.Collections.Frozen;
using AotProxy.Configuration;

namespace AotProxy.Routing;

// An immutable view: every worker, the pools by model name, and every model a worker served
// since the gateway started.
internal sealed class WorkerSet
{
    public static readonly WorkerSet Empty = new([]);

    private readonly FrozenSet<string> _served;

    // servedBefore: the models the sets before this one served (WorkerRegistry); previous: the set
    // this one replaces, whose pools hand their conversations (SessionTable) on.
    public WorkerSet(WorkerState[] workers, FrozenSet<string>? servedBefore = null, WorkerSet? previous = null)
    {
        Workers = workers;
        var byModel = new Dictionary<string, List<WorkerState>>(StringComparer.Ordinal);
        foreach (var worker in workers)
        {
            foreach (var model in worker.Models)
            {
                if (!byModel.TryGetValue(model, out var list))
                {
                    byModel[model] = list = [];
                }

                list.Add(worker);
            }
        }

        Pools = byModel.ToFrozenDictionary(p => p.Key, p => new WorkerPool(p.Key, [.. p.Value], LoraAdapter.For(p.Key, [.. p.Value]), previous?.Pools.GetValueOrDefault(p.Key)?.Sessions), StringComparer.Ordinal);
        servedBefore ??= FrozenSet<string>.Empty;
        _served = Pools.Keys.All(servedBefore.Contains) ? servedBefore : servedBefore.Union(Pools.Keys).ToFrozenSet(StringComparer.Ordinal);
    }

    // The models served only grow: a model stays known (503 while no worker takes it) until the
    // gateway restarts.
    public FrozenSet<string> Served => _served;

    public WorkerState[] Workers { get; }

    public FrozenDictionary<string, WorkerPool> Pools { get; }

    public WorkerState? Find(string name)
    {
        foreach (var worker in Workers)
        {
            if (worker.Name == name)
            {
                return worker;
            }
        }

        return null;
    }

    // Whether some worker served the model since the gateway started: listed in its `models`, or
    // reported by its GET /v1/models, even if that worker is gone now (a reload removed it).
    public bool HasServed(string model) => _served.Contains(model);

    // Whether a worker configured without `models` has not reported its models yet (down since
    // the start, or its discovery still running): a model no pool has may be one of its.
    public bool AwaitsModels()
    {
        foreach (var worker in Workers)
        {
            if (worker.NeedsDiscovery && worker.DiscoveredModels.IsEmpty)
            {
                return true;
            }
        }

        return false;
    }

    // /ready: some worker with a known model takes requests.
    public bool HasRoutableWorker(CircuitBreakerModel breaker)
    {
        foreach (var worker in Workers)
        {
            if (worker.IsRoutable(breaker) && !worker.Models.IsEmpty)
            {
                return true;
            }
        }

        return false;
    }

    public void ScavengeIdleConnections()
    {
        foreach (var worker in Workers)
        {
            _ = worker.Connections.ScavengeAsync().AsTask();
        }
    }
}
