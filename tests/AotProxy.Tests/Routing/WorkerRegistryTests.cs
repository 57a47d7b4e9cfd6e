using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

public class WorkerRegistryTests
{
    [Fact]
    public void HasRoutableWorker_FalseWhenEveryWorkerDrainsOrHasItsCircuitOpen()
    {
        var registry = new WorkerRegistry(new ManualTimeProvider());
        var snapshot = Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "m"),
        ]);
        registry.Apply(snapshot);
        Assert.True(registry.HasRoutableWorker());

        registry.Current.Find("a")!.Draining = true;
        Assert.True(registry.HasRoutableWorker());

        var b = registry.Current.Find("b")!;
        for (var i = 0; i < snapshot.CircuitBreaker.FailureThreshold; i++)
        {
            b.Breaker.OnFailure(BreakerPermit.Normal, snapshot.CircuitBreaker);
        }

        Assert.False(registry.IsRoutable(b));
        Assert.False(registry.HasRoutableWorker());

        registry.Current.Find("a")!.Draining = false;
        Assert.True(registry.HasRoutableWorker());
    }

    [Fact]
    public void Apply_SameNameAndUrl_KeepsTheStateAndOtherwiseReplacesOrRemovesIt()
    {
        var registry = new WorkerRegistry(new ManualTimeProvider());
        registry.Apply(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "m"),
            Snapshots.Worker("c", "http://127.0.0.1:3/", "m"),
        ]));
        var a = registry.Current.Find("a")!;
        var b = registry.Current.Find("b")!;
        var c = registry.Current.Find("c")!;
        a.OnRequestStart();

        registry.Apply(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m", "n"),  // same identity, new models
            Snapshots.Worker("b", "http://127.0.0.1:9/", "m"),       // URL changed: a new worker
        ], revision: 2));

        Assert.Same(a, registry.Current.Find("a"));
        Assert.Equal(1, a.InFlight);
        Assert.Equal(["m", "n"], a.Models.ToArray());
        Assert.NotSame(b, registry.Current.Find("b"));
        Assert.True(b.Removed);
        Assert.True(c.Removed);
        Assert.Null(registry.Current.Find("c"));
        Assert.Equal(["a"], registry.Current.Pools["n"].Workers.Select(w => w.Name));
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
        var registry = new WorkerRegistry(new ManualTimeProvider());
        registry.Apply(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "n"),
        ]));

        registry.Apply(Snapshots.Create([Snapshots.Worker("b", "http://127.0.0.1:2/", "n")], revision: 2));

        Assert.False(registry.Current.Pools.ContainsKey("m"));
        Assert.True(registry.HasServed("m"));
        Assert.True(registry.HasServed("n"));
        Assert.False(registry.HasServed("never-served"));
    }

    // A worker without `models` that has not answered GET /v1/models may serve any model: until
    // it reports its list, a model no pool has is not known to be unknown.
    [Fact]
    public void AwaitsModels_WhileAWorkerWithoutModelsHasNotReportedThem()
    {
        var registry = new WorkerRegistry(new ManualTimeProvider());
        registry.Apply(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("d", "http://127.0.0.1:2/"),
        ]));
        Assert.True(registry.AwaitsModels());
        Assert.False(registry.HasServed("lora-1"));

        registry.Current.Find("d")!.DiscoveredModels = ["base", "lora-1"];
        registry.Rebuild();

        Assert.False(registry.AwaitsModels());
        Assert.True(registry.HasServed("lora-1"));
        Assert.Equal(["d"], registry.Current.Pools["lora-1"].Workers.Select(w => w.Name));
    }
}
