using AotProxy.Routing;
using AotProxy.Routing.Policies;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

// p2c_kv for a LoRA adapter: loaded > free adapter slot > any worker that serves it; a worker
// where vLLM queues ranks after every one where it does not.
public class LoraPlacementTests
{
    private static readonly string[] Adapters = ["a0", "a1", "a2", "a3"];

    private readonly FakeTimeProvider _time = new();
    private readonly Random _random = new(7);

    // Workers w0..w{count-1} serving "base" and the adapters (w3, when there, serves only "base");
    // each lists the adapters in its own order, as vLLM lists --lora-modules.
    private WorkerSet Fleet(int count)
    {
        var workers = Enumerable.Range(0, count).Select(i =>
        {
            string[] models = i == 3 ? ["base"] : ["base", .. Adapters.Skip(i).Concat(Adapters.Take(i))];
            var worker = new WorkerState(Snapshots.Worker($"w{i}", $"http://127.0.0.1:{20000 + i}/", models), _time);
            worker.DiscoveredAdapters = [.. models.Skip(1).Select(a => new ListedModel(a, "base", "/adapters/" + a))];
            return worker;
        }).ToArray();
        return new WorkerSet(workers);
    }

    private static ulong Bit(WorkerState worker, string adapter) => 1UL << worker.Models.IndexOf(adapter);

    private static void Scrape(WorkerState worker, double running, double waiting, int maxLora = 2, string[]? runningAdapters = null, string[]? waitingAdapters = null)
    {
        ulong Mask(string[]? names) => (names ?? []).Aggregate(0UL, (mask, name) => mask | Bit(worker, name));
        var lora = new LoraAdapters(true, maxLora, runningAdapters?.Length ?? 0, waitingAdapters?.Length ?? 0, Mask(runningAdapters), Mask(waitingAdapters));
        worker.OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load, Running = running, Waiting = waiting, Lora = lora });
    }

    private RouteContext Context(ulong excluded = 0) =>
        new(Snapshots.Defaults.Routing, Snapshots.Defaults.CircuitBreaker, Snapshots.Defaults.Scheduler, new RouteRequest(0, 0), _time, _random, excluded);

    private int Pick(WorkerPool pool, ulong excluded = 0) => new P2cKvPolicy().Pick(pool, Context(excluded));

    [Fact]
    public void Discovery_AdapterPool_HoldsOnlyTheWorkersThatServeIt_WithEachWorkersBit()
    {
        var set = Fleet(4);
        var pool = set.Pools["a2"];

        Assert.Equal(["w0", "w1", "w2"], pool.Workers.Select(w => w.Name));
        Assert.Equal(("base", "/adapters/a2"), (pool.Adapter!.Parent, pool.Adapter.Root));
        Assert.Equal(pool.Workers.Select(w => Bit(w, "a2")), pool.Adapter.Bits);
        Assert.Equal([1UL << 3, 1UL << 2, 1UL << 1], pool.Adapter.Bits);
        Assert.Null(set.Pools["base"].Adapter);
    }

    [Fact]
    public void ModelListReader_VllmFixture_TellsAdaptersByTheirParent()
    {
        Assert.True(ModelListReader.TryRead(Fixtures.Bytes("openai/models.json"), out var models));

        Assert.Equal(
            [
                new ListedModel("Qwen/Qwen2.5-Coder-1.5B-Instruct", null, "Qwen/Qwen2.5-Coder-1.5B-Instruct", 32768), // an adapter's max_model_len is null
                new ListedModel("lora-1", "Qwen/Qwen2.5-Coder-1.5B-Instruct", "bharati2324/Qwen2.5-1.5B-Instruct-Code-LoRA-r16v2"),
                new ListedModel("lora-2", "Qwen/Qwen2.5-Coder-1.5B-Instruct", "bharati2324/Qwen2.5-1.5B-Instruct-Code-LoRA-r16v2"),
            ],
            models.ToArray());
        Assert.Equal([false, true, true], models.Select(m => m.IsAdapter));
    }

    [Fact]
    public void Pick_LoadedBeatsFreeSlotBeatsAny_WhateverTheLoad()
    {
        var pool = Fleet(3).Pools["a0"];
        var (full, free, loaded) = (pool.Workers[0], pool.Workers[1], pool.Workers[2]);
        Scrape(full, running: 1, waiting: 0, runningAdapters: ["a1", "a2"]);
        Scrape(free, running: 4, waiting: 0, runningAdapters: ["a1"]);
        Scrape(loaded, running: 20, waiting: 0, runningAdapters: ["a0", "a3"]);

        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(2, Pick(pool)));
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(1, Pick(pool, excluded: 1UL << 2)));
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(0, Pick(pool, excluded: 0b110)));
    }

    [Fact]
    public void Pick_WaitingAdapter_CountsAsLoaded()
    {
        var pool = Fleet(2).Pools["a0"];
        Scrape(pool.Workers[0], running: 0, waiting: 0);
        Scrape(pool.Workers[1], running: 8, waiting: 0, runningAdapters: ["a1", "a2"], waitingAdapters: ["a0"]);

        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(1, Pick(pool)));
    }

    // Within a rank, a worker where vLLM queues comes last; across ranks, residency decides.
    [Fact]
    public void Pick_LoadedWorkerQueues_AnotherLoadedOneWins_ThenTheQueuingOneBeforeALoad()
    {
        var pool = Fleet(3).Pools["a0"];
        Scrape(pool.Workers[0], running: 0, waiting: 0, runningAdapters: ["a1"]);
        Scrape(pool.Workers[1], running: 6, waiting: 0, runningAdapters: ["a0"]);
        Scrape(pool.Workers[2], running: 2, waiting: 1, runningAdapters: ["a0"]);

        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(1, Pick(pool)));
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(2, Pick(pool, excluded: 1UL << 1)));
    }

    // With no slot free anywhere, a worker whose resident adapters are idle loads at once; one
    // whose slots' adapters all run would make the request wait for a slot.
    [Fact]
    public void Pick_EvictingAnIdleAdapter_BeatsWaitingForASlot()
    {
        var set = Fleet(2);
        var pool = set.Pools["a0"];
        Scrape(pool.Workers[0], running: 0, waiting: 0);
        Scrape(pool.Workers[1], running: 2, waiting: 0, runningAdapters: ["a1", "a2"]);
        foreach (var adapter in (string[])["a1", "a2"])
        {
            LoraPlacement.OnPicked(set.Pools[adapter], 0, _time);
        }

        Assert.Equal((2, 3), (LoraPlacement.Tier(pool.Workers[0], pool.Adapter!.Bits[0], fresh: true), LoraPlacement.Tier(pool.Workers[1], pool.Adapter.Bits[1], fresh: true)));
        pool.Workers[0].OnRequestStart(); // more in flight than w1 has running: load alone would pick w1
        pool.Workers[0].OnRequestStart();
        pool.Workers[0].OnRequestStart();
        Assert.All(Enumerable.Range(0, 20), _ => Assert.Equal(0, Pick(pool)));
    }

    // The gauge shows only adapters with requests; between scrapes, what the gateway sent is
    // resident, evicted least recently sent first past max_lora.
    [Fact]
    public void OnPicked_SentAdaptersAreResident_LeastRecentEvictedPastMaxLora()
    {
        var set = Fleet(2);
        var worker = set.Pools["a0"].Workers[0];
        Scrape(worker, running: 0, waiting: 0, maxLora: 2);
        Scrape(set.Pools["a0"].Workers[1], running: 0, waiting: 0, maxLora: 2);

        foreach (var adapter in (string[])["a0", "a1", "a0", "a2"])
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            LoraPlacement.OnPicked(set.Pools[adapter], 0, _time);
        }

        Assert.Equal(Bit(worker, "a0") | Bit(worker, "a2"), worker.Affinity.Resident);
        Assert.Equal(0, LoraPlacement.Tier(worker, Bit(worker, "a0"), fresh: true));
        Assert.Equal(2, LoraPlacement.Tier(worker, Bit(worker, "a1"), fresh: true));
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Equal(0, Pick(set.Pools["a2"])));
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Equal(1, Pick(set.Pools["a1"]))); // w1: a free slot
    }

    [Fact]
    public void OnPicked_BaseModel_LeavesTheAdaptersAlone()
    {
        var set = Fleet(1);
        LoraPlacement.OnPicked(set.Pools["base"], 0, _time);

        Assert.Equal(0UL, set.Workers[0].Affinity.Resident);
    }

    [Fact]
    public void Pick_Adapter_AllocatesNothing()
    {
        var pool = Fleet(3).Pools["a1"];
        foreach (var worker in pool.Workers)
        {
            Scrape(worker, running: 3, waiting: 0, runningAdapters: ["a2"]);
        }

        var policy = new P2cKvPolicy();
        var context = Context();
        policy.Pick(pool, context);
        var picks = new int[100];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < picks.Length; i++)
        {
            picks[i] = policy.Pick(pool, context);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.All(picks, p => Assert.InRange(p, 0, 2));
    }
}
