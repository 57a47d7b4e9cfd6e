using System.Collections.Frozen;

namespace AotProxy.Routing;

// An immutable view: every worker, and the pools by model name.
internal sealed class WorkerSet
{
    public static readonly WorkerSet Empty = new([]);

    public WorkerSet(WorkerState[] workers)
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

        Pools = byModel.ToFrozenDictionary(p => p.Key, p => new WorkerPool(p.Key, [.. p.Value]), StringComparer.Ordinal);
    }

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
}
