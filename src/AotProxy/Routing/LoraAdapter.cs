using System.Collections.Immutable;

namespace AotProxy.Routing;

// A pool whose model is a LoRA adapter (a worker lists it in /v1/models with a parent): its
// parent and root for the gateway's /v1/models, and for each worker of the pool the adapter's bit
// in that worker's model list (0 past the 64th model), resolved once per worker set so that a
// pick compares bits (LoraPlacement).
internal sealed class LoraAdapter(string parent, string? root, ulong[] bits)
{
    public string Parent { get; } = parent;

    public string? Root { get; } = root;

    // By pool index.
    public ulong[] Bits { get; } = bits;

    // null: no worker of the pool lists the model as an adapter.
    public static LoraAdapter? For(string model, WorkerState[] workers)
    {
        foreach (var worker in workers)
        {
            foreach (var listed in worker.DiscoveredAdapters)
            {
                if (listed.Id == model)
                {
                    return new LoraAdapter(listed.Parent!, listed.Root, [.. workers.Select(w => BitOf(w.Models, model))]);
                }
            }
        }

        return null;
    }

    // The model's bit in a worker's model list (as VllmModelFilter indexes it), 0 past the 64th.
    public static ulong BitOf(ImmutableArray<string> models, string model)
    {
        var index = models.IndexOf(model, StringComparer.Ordinal);
        return index is >= 0 and < 64 ? 1UL << index : 0;
    }
}
