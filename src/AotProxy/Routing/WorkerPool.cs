using AotProxy.Configuration;

namespace AotProxy.Routing;

// The workers that serve one model, and the per-pool memory of the balancers. Rebuilt whenever
// the worker set changes (reloads, discovery): cursors start again and rings are rebuilt, while
// everything learned about the workers lives in their WorkerState and carries over.
internal sealed class WorkerPool(string model, WorkerState[] workers, LoraAdapter? adapter = null, SessionTable? sessions = null)
{
    // Above 64 workers, stackalloc'd candidate lists would grow past a few hundred bytes.
    public const int StackCandidates = 64;

    private uint _cursor;
    private int[]? _weightedSchedule;
    private HashRing? _ring;

    public string Model { get; } = model;

    public WorkerState[] Workers { get; } = workers;

    // Set when the model is a LoRA adapter: p2c_kv places it by residency (LoraPlacement).
    public LoraAdapter? Adapter { get; } = adapter;

    // p2c_kv's conversations of this model (SessionAffinity), carried over from the pool before.
    public SessionTable Sessions { get; } = sessions ?? new();

    // Admission slots: those of every worker that takes requests now (max_concurrency, or
    // adapted to its queue under scheduler.adaptive_slots; a half-open breaker's trials).
    public int Capacity(GatewaySnapshot snapshot)
    {
        var capacity = 0;
        foreach (var worker in Workers)
        {
            capacity += worker.Capacity(snapshot);
        }

        return capacity;
    }

    // The room it has now, the one rule an alias's target and model "auto" compare pools by: the
    // share of its slots free (Capacity less those taken, over Capacity; negative when slots shrank
    // under requests in flight; a worker serving several models counts for each of them), or
    // NoRoom when it takes no requests at all. A share, not a count: a pool of 4 with 2 free is as
    // open as one of 64 with 32. One walk over the workers.
    public double FreeShare(GatewaySnapshot snapshot)
    {
        var capacity = 0;
        var spare = 0;
        foreach (var worker in Workers)
        {
            var slots = worker.Capacity(snapshot);
            capacity += slots;
            spare += slots > 0 ? slots - worker.SlotsTaken : 0;
        }

        return capacity == 0 ? NoRoom : (double)spare / capacity;
    }

    public const double NoRoom = double.NegativeInfinity;

    // The smallest max_model_len its workers listed (a request must fit on any of them; an adapter
    // has its parent's): what model "auto" checks a prompt against, and GET /v1/models shows.
    // 0: unknown, while no worker was asked (configured `models` without adapters are never asked).
    // Derived once: a pool is rebuilt when a worker's listed models change (ModelDiscovery).
    public int ContextLength { get; } = ShortestContext(adapter?.Parent ?? model, workers);

    // The model's name as a JSON string, quotes included: what replaces an alias in a request body.
    public byte[] ModelJson { get; } = JsonEncodedModel(model);

    // The name as UTF-8 text: what replaces an alias in a multipart form's `model` part.
    public byte[] ModelUtf8 { get; } = System.Text.Encoding.UTF8.GetBytes(model);

    public uint NextCursor() => Interlocked.Increment(ref _cursor) - 1;

    // nginx's smooth weighted round robin, unrolled once into a schedule of worker indexes, so a
    // pick is one Interlocked increment instead of a lock around the running weights.
    public int[] WeightedSchedule => _weightedSchedule ??= SmoothWeightedSchedule.Build(Workers);

    private static byte[] JsonEncodedModel(string model)
    {
        var encoded = System.Text.Json.JsonEncodedText.Encode(model).EncodedUtf8Bytes;
        var json = new byte[encoded.Length + 2];
        json[0] = (byte)'"';
        encoded.CopyTo(json.AsSpan(1));
        json[^1] = (byte)'"';
        return json;
    }

    private static int ShortestContext(string name, WorkerState[] workers)
    {
        var shortest = 0;
        foreach (var worker in workers)
        {
            foreach (var listed in worker.ListedModels)
            {
                if (listed.Id == name && listed.MaxModelLen is { } length && (shortest == 0 || length < shortest))
                {
                    shortest = length;
                }
            }
        }

        return shortest;
    }

    public HashRing Ring(int virtualNodes)
    {
        var ring = _ring;
        if (ring is null || ring.VirtualNodes != virtualNodes)
        {
            _ring = ring = new HashRing(Workers, virtualNodes);
        }

        return ring;
    }
}
