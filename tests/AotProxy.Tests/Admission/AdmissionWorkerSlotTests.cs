using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Admission;

// Issue 14, items 4 and 6: every grant comes with a slot on a worker of the pool that has room,
// so the router always has somewhere to send a granted request, and no worker is sent more than
// its max_concurrency. Two models share a worker, as a vLLM with LoRA adapters is in one pool
// per adapter: each pool counts that worker's slots, and only the worker's own count is exact.
public sealed class AdmissionWorkerSlotTests
{
    private const int MaxConcurrency = 2;

    private readonly FakeTimeProvider _time = new();
    private readonly GatewaySnapshot _snapshot;
    private readonly WorkerState[] _workers;
    private readonly WorkerSet _set;
    private readonly Router _router;

    public AdmissionWorkerSlotTests()
    {
        // w0 serves a, w1 serves a and b, w2 serves b: pools of 4 slots each, 6 slots in all.
        _snapshot = Snapshots.Create([Worker("w0", 1, "a"), Worker("w1", 2, "a", "b"), Worker("w2", 3, "b")]);
        _workers = [.. _snapshot.Workers.Select(m => new WorkerState(m, _time))];
        _set = new WorkerSet(_workers);
        _router = new Router(_time, new Random(7), NullLogger.Instance);
    }

    [Fact]
    public async Task Admit_EveryGrantHoldsASlotOnAWorkerOfItsPoolWithRoom()
    {
        var model = Admission("a");
        var results = new List<AdmissionResult>();
        for (var i = 0; i < 4; i++)
        {
            results.Add(await Admit(model, "a"));
        }

        var queued = Admit(model, "a");

        Assert.All(results, r => Assert.Equal(AdmissionDecision.Admitted, r.Decision));
        Assert.All(results, r => Assert.Contains("a", r.Slot.Worker!.Models));
        Assert.Equal([2, 2, 0], _workers.Select(w => w.SlotsTaken));
        Assert.False(queued.IsCompleted);

        var done = results[0];
        var slot = done.Slot;
        slot.Release();
        done.Lease.Release(null);
        var granted = await Settle(queued);

        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        Assert.Same(done.Slot.Worker, granted.Slot.Worker);
        Assert.Equal([2, 2, 0], _workers.Select(w => w.SlotsTaken));
    }

    // Pool a's book shows free slots, but the worker it shares with b is full of b's requests:
    // a's request waits instead of being granted a slot no worker has. A slot that comes free on
    // the shared worker (b's attempt ended) lets a's waiter in at once.
    [Fact]
    public async Task Admit_SharedWorkerFullOfAnotherModelsRequests_WaitsForAFreeSlot()
    {
        var a = Admission("a");
        var b = Admission("b");
        var bs = new List<AdmissionResult>();
        for (var i = 0; i < 4; i++)
        {
            bs.Add(await Admit(b, "b"));
        }

        Assert.Equal([0, 2, 2], _workers.Select(w => w.SlotsTaken));
        var aFirst = await Admit(a, "a");
        var aFirst2 = await Admit(a, "a");
        Assert.Equal([2, 2, 2], _workers.Select(w => w.SlotsTaken));

        var waiting = Admit(a, "a");

        Assert.False(waiting.IsCompleted);
        Assert.Equal((2, 1), (a.Slots.Used, a.Waiting)); // the book had 2 free: no worker had room
        var onShared = bs.First(r => r.Slot.Worker == _workers[1]);
        var slot = onShared.Slot;
        slot.Release();
        a.Dispatch(); // what AdmissionController.OnSlotFreed does for a worker in several pools
        var granted = await Settle(waiting);
        Assert.Equal((AdmissionDecision.Granted, _workers[1]), (granted.Decision, granted.Slot.Worker));
        Assert.Equal([2, 2, 2], _workers.Select(w => w.SlotsTaken));
        Assert.True(aFirst.IsAdmitted && aFirst2.IsAdmitted);
    }

    // Threads admit to both pools at once, pick (which may move the slot), hold a moment and give
    // back; the dispatcher grants waiters from other threads. Every grant has a worker slot, the
    // pick always finds a worker, no worker ever holds more than its slots, nothing is left.
    [Fact]
    public async Task Admit_ManyThreadsOnTwoPoolsSharingAWorker_NeverGrantsWithoutAWorkerWithRoom()
    {
        const int Threads = 4;
        const int PerThread = 1500;
        var models = new[] { Admission("a", TimeProvider.System), Admission("b", TimeProvider.System) };
        var peak = new int[_workers.Length];
        var failures = new List<string>();
        var served = 0;

        void Fail(string what)
        {
            lock (failures)
            {
                failures.Add(what);
            }
        }

        async Task Client(int seed)
        {
            var random = new Random(seed);
            for (var n = 0; n < PerThread; n++)
            {
                var which = random.Next(2);
                var model = models[which];
                var name = which == 0 ? "a" : "b";
                var result = await Admit(model, name);
                if (!result.IsAdmitted)
                {
                    Fail($"{name}: {result.Decision}");
                    continue;
                }

                var slot = result.Slot;
                if (!slot.IsHeld || !slot.Worker!.Models.Contains(name))
                {
                    Fail($"{name}: granted without a slot on one of its workers");
                }

                ulong tried = 0;
                var worker = _router.Pick(_set.Pools[name], _snapshot, default, ref tried, ref slot, out _);
                if (worker is null)
                {
                    Fail($"{name}: granted, and no worker to route to");
                }

                for (var i = 0; i < _workers.Length; i++)
                {
                    var taken = _workers[i].SlotsTaken;
                    var seen = Volatile.Read(ref peak[i]);
                    while (taken > seen && Interlocked.CompareExchange(ref peak[i], taken, seen) is var found && found != seen)
                    {
                        seen = found;
                    }
                }

                if (random.Next(4) == 0)
                {
                    await Task.Yield();
                }

                slot.Release();
                if (worker is not null && worker.Models.Length > 1)
                {
                    models[1 - which].Dispatch(); // AdmissionController.OnSlotFreed
                }

                result.Lease.Release(null);
                Interlocked.Increment(ref served);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(i => Task.Run(() => Client(i)))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Empty(failures);
        Assert.Equal(Threads * PerThread, served);
        Assert.All(peak, p => Assert.InRange(p, 1, MaxConcurrency));
        Assert.All(_workers, w => Assert.Equal(0, w.SlotsTaken));
        Assert.All(models, m => Assert.Equal((0, 0), (m.Slots.Used, m.Waiting)));
    }

    private static WorkerModel Worker(string name, int port, params string[] models) =>
        new(name, new Uri($"http://127.0.0.1:{port}/"), [.. models], MaxConcurrency, 1, string.Empty);

    // As AdmissionController sets one up: the pool, its capacity and the snapshot applied.
    private ModelAdmission Admission(string model, TimeProvider? time = null)
    {
        var admission = new ModelAdmission(model, _snapshot.Scheduler, new WaiterPool(time ?? _time, 64), time ?? _time, _router);
        var pool = _set.Pools[model];
        admission.Apply(pool.Capacity(_snapshot), pool, _snapshot);
        return admission;
    }

    private static Task<AdmissionResult> Admit(ModelAdmission model, string name)
    {
        var cls = Class(maxQueueWait: TimeSpan.FromMinutes(1));
        Assert.Equal(name, model.Model);
        return model.AdmitAsync(new AdmissionRequest(Tenant("t", cls), cls, 0, 100), CancellationToken.None).AsTask();
    }
}
