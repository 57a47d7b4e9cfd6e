using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

public class WorkerRegistryTests
{
    [Fact]
    public void HasRoutableWorker_FalseWhenEveryWorkerDrainsOrHasItsCircuitOpen()
    {
        var registry = new WorkerRegistry(new FakeTimeProvider());
        var snapshot = Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "m"),
        ]);
        var set = registry.Build(snapshot, WorkerSet.Empty);
        var breaker = snapshot.CircuitBreaker;
        Assert.True(set.HasRoutableWorker(breaker));

        set.Find("a")!.Draining = true;
        Assert.True(set.HasRoutableWorker(breaker));

        var b = set.Find("b")!;
        for (var i = 0; i < breaker.FailureThreshold; i++)
        {
            b.Breaker.OnFailure(BreakerPermit.Normal, breaker);
        }

        Assert.False(b.IsRoutable(breaker));
        Assert.False(set.HasRoutableWorker(breaker));

        set.Find("a")!.Draining = false;
        Assert.True(set.HasRoutableWorker(breaker));
    }

    [Fact]
    public void Apply_SameNameAndUrl_KeepsTheStateAndOtherwiseReplacesOrRemovesIt()
    {
        var registry = new WorkerRegistry(new FakeTimeProvider());
        var first = registry.Build(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "m"),
            Snapshots.Worker("c", "http://127.0.0.1:3/", "m"),
        ]), WorkerSet.Empty);
        var a = first.Find("a")!;
        var b = first.Find("b")!;
        var c = first.Find("c")!;
        a.OnRequestStart();

        var second = registry.Build(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m", "n"),  // same identity, new models
            Snapshots.Worker("b", "http://127.0.0.1:9/", "m"),       // URL changed: a new worker
        ], revision: 2), first);
        Assert.False(b.Removed || c.Removed); // Build alone retires nothing
        WorkerRegistry.Retire(first, second);

        Assert.Same(a, second.Find("a"));
        Assert.Equal(1, a.InFlight);
        Assert.Equal(["m", "n"], a.Models.ToArray());
        Assert.NotSame(b, second.Find("b"));
        Assert.True(b.Removed);
        Assert.True(c.Removed);
        Assert.False(a.Removed);
        Assert.Null(second.Find("c"));
        Assert.Equal(["a"], second.Pools["n"].Workers.Select(w => w.Name));
    }

    [Fact]
    public void ModelListReader_VllmModelsFixture_ReadsTheIds()
    {
        Assert.True(ModelListReader.TryReadIds(Fixtures.Bytes("openai/models.json"), out var ids));
        Assert.Equal(["Qwen/Qwen2.5-Coder-1.5B-Instruct", "lora-1", "lora-2"], ids.ToArray());
        Assert.False(ModelListReader.TryReadIds("not json"u8, out _));
    }

    // Issue 14, item 7: a model some worker served since the start is out of capacity (503) when
    // no worker has it any more, not unknown (404), also after a reload removed its workers.
    [Fact]
    public void HasServed_RemembersEveryModelAWorkerServedSinceTheStart()
    {
        var registry = new WorkerRegistry(new FakeTimeProvider());
        var first = registry.Build(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "n"),
        ]), WorkerSet.Empty);

        var second = registry.Build(Snapshots.Create([Snapshots.Worker("b", "http://127.0.0.1:2/", "n")], revision: 2), first);

        Assert.False(second.Pools.ContainsKey("m"));
        Assert.True(second.HasServed("m"));
        Assert.True(second.HasServed("n"));
        Assert.False(second.HasServed("never-served"));
    }

    // A worker without `models` that has not answered GET /v1/models may serve any model: until
    // it reports its list, a model no pool has is not known to be unknown.
    [Fact]
    public void AwaitsModels_WhileAWorkerWithoutModelsHasNotReportedThem()
    {
        var registry = new WorkerRegistry(new FakeTimeProvider());
        var set = registry.Build(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("d", "http://127.0.0.1:2/"),
        ]), WorkerSet.Empty);
        Assert.True(set.AwaitsModels());
        Assert.False(set.HasServed("lora-1"));

        set.Find("d")!.DiscoveredModels = ["base", "lora-1"];
        var rebuilt = WorkerRegistry.Rebuild(set);

        Assert.False(rebuilt.AwaitsModels());
        Assert.True(rebuilt.HasServed("lora-1"));
        Assert.Equal(["d"], rebuilt.Pools["lora-1"].Workers.Select(w => w.Name));
    }
}
