using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

// An alias's target: the served one with the most room (WorkerPool.FreeShare: the share of its
// slots free), the first listed on a tie, a healthy one over one that takes no requests.
public sealed class AliasTargetsTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Pick_TheTargetWithMostSpareSlots()
    {
        var (workers, snapshot) = Fleet(("a", 4), ("b", 4));
        Take(workers, "a", 3);
        Take(workers, "b", 1);

        Assert.Equal("b", AliasTargets.Pick(["a", "b"], workers, snapshot)!.Model);

        Take(workers, "b", 3);
        Assert.Equal("a", AliasTargets.Pick(["a", "b"], workers, snapshot)!.Model);
    }

    [Fact]
    public void Pick_ByTheShareFree_NotTheCount()
    {
        var (workers, snapshot) = Fleet(("a", 64), ("b", 4));
        Take(workers, "a", 40); // 24 free of 64: 0.375
        Take(workers, "b", 2);  // 2 free of 4: 0.5

        Assert.Equal("b", AliasTargets.Pick(["a", "b"], workers, snapshot)!.Model);
    }

    [Fact]
    public void Pick_OnATie_TheFirstListed()
    {
        var (workers, snapshot) = Fleet(("a", 4), ("b", 4));

        Assert.Equal("b", AliasTargets.Pick(["b", "a"], workers, snapshot)!.Model);
        Assert.Equal("a", AliasTargets.Pick(["a", "b"], workers, snapshot)!.Model);
    }

    [Fact]
    public void Pick_SkipsADrainedTarget_EvenWithMoreSlots_AndTargetsNoWorkerServes()
    {
        var (workers, snapshot) = Fleet(("a", 64), ("b", 2));
        workers.Find("w-a")!.Draining = true;

        Assert.Equal("b", AliasTargets.Pick(["gone", "a", "b"], workers, snapshot)!.Model);
    }

    [Fact]
    public void Pick_NoHealthyTarget_TheFirstServed_NoneServed_Null()
    {
        var (workers, snapshot) = Fleet(("a", 4), ("b", 4));
        workers.Find("w-a")!.Draining = true;
        workers.Find("w-b")!.Draining = true;

        Assert.Equal("b", AliasTargets.Pick(["gone", "b", "a"], workers, snapshot)!.Model);
        Assert.Null(AliasTargets.Pick(["gone", "other"], workers, snapshot));
    }

    private (WorkerSet Workers, GatewaySnapshot Snapshot) Fleet(params (string Model, int Slots)[] pools)
    {
        var models = pools.Select(p => new WorkerModel($"w-{p.Model}", new Uri($"http://127.0.0.1:{20000 + p.Slots}/"), [p.Model], p.Slots, 1, "")).ToArray();
        var snapshot = Snapshots.Create(models);
        return (new WorkerSet([.. models.Select(m => new WorkerState(m, _time))]), snapshot);
    }

    private static void Take(WorkerSet workers, string model, int slots)
    {
        var pool = workers.Pools[model];
        for (var i = 0; i < slots; i++)
        {
            Assert.True(pool.Workers[0].TryTakeSlot(Snapshots.Create(), out _));
        }
    }
}
