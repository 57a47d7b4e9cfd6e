using System.Numerics;
using AotProxy.Routing.Policies;

namespace AotProxy.Routing;

// p2c_kv for a request that names a LoRA adapter (its pool has a LoraAdapter): a worker that has
// the adapter loaded, else one with a free adapter slot, else one where an idle adapter makes
// room, else any (the pool holds only workers that serve the adapter). Loading costs vLLM a swap
// of the adapter's weights, evicts an adapter another request may want next, and, with every
// slot's adapter running, waits for one; so residency ranks before load. Within a rank, a
// saturated worker (Saturation) comes last, then the fewest requests, then the fewest in flight
// (LowestScan). A hot adapter spreads once its workers' slots (max_concurrency,
// a candidate's bound) are taken. Measured (LoraRoutingTests, 8 adapters on 4 simulated workers
// x 2 slots, 160 requests): ranking saturation before residency made 47-62 loads, this 8-9,
// least_queue 117-130.
// Loaded: in the last fresh scrape's running or waiting adapters, or resident in the gateway's
// own account (WorkerAffinity), which covers the time between scrapes. Bits only: 0 B per pick.
internal static class LoraPlacement
{
    // A rank outweighs any count of requests a worker holds.
    private const double RankWeight = 1e9;

    public static int Pick(WorkerPool pool, in RouteContext context) => LowestScan.Pick(pool, context, static (pool, index, context) =>
    {
        var worker = pool.Workers[index];
        var load = worker.Load(context.Routing.StaleAfter);
        var rank = (2 * Tier(worker, pool.Adapter!.Bits[index], load.Fresh)) + (Saturation.IsSaturated(worker, load) ? 1 : 0);
        return (rank * RankWeight) + load.Requests;
    });

    // 0: the adapter is loaded there; 1: a slot is free; 2: loading it evicts an idle adapter;
    // 3: every slot's adapter has running requests (as last scraped), so it waits for one.
    // fresh: whether the worker's last scrape is (its running and waiting adapters count).
    internal static int Tier(WorkerState worker, ulong bit, bool fresh)
    {
        var scraped = worker.Scraped?.Metrics.Lora ?? default;
        var lora = fresh ? scraped : default;
        var resident = worker.Affinity.Resident;
        if (((resident | lora.RunningMask | lora.WaitingMask) & bit) != 0)
        {
            return 0;
        }

        // Running adapters that are not among the worker's models still hold a slot.
        var unlisted = Math.Max(0, lora.Running - BitOperations.PopCount(lora.RunningMask));
        var slots = MaxLora(scraped);
        return BitOperations.PopCount(resident | lora.RunningMask) + unlisted < slots ? 1
            : BitOperations.PopCount(lora.RunningMask) + unlisted < slots ? 2
            : 3;
    }

    // After a pick for an adapter: the worker loads it (WorkerAffinity.Sent).
    public static void OnPicked(WorkerPool pool, int index, TimeProvider time)
    {
        if (pool.Adapter is { } adapter && adapter.Bits[index] is var bit and not 0)
        {
            var worker = pool.Workers[index];
            worker.Affinity.Sent(bit, MaxLora(worker.Scraped?.Metrics.Lora ?? default), time.GetTimestamp());
        }
    }

    // The last scrape's max_lora, stale or not (it changes only with a restart); vLLM's default
    // --max-loras, 1, while none told.
    private static int MaxLora(LoraAdapters lora) => lora.Reported && lora.MaxLora > 0 ? lora.MaxLora : 1;
}
