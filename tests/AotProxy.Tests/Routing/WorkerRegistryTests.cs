using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

public class WorkerRegistryTests
{
    [Fact]
    public void TryPick_RoundRobin_AlternatesAmongTheModelsWorkers()
    {
        var registry = new WorkerRegistry();
        registry.Apply(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "m", "n"),
            Snapshots.Worker("c", "http://127.0.0.1:3/", "n"),
        ]));

        var picks = Enumerable.Range(0, 6).Select(_ => Pick(registry, "m")).ToArray();

        Assert.Equal(3, picks.Count(p => p == "a"));
        Assert.Equal(3, picks.Count(p => p == "b"));
        Assert.All(picks.Zip(picks.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second));
        Assert.Equal(PickOutcome.UnknownModel, registry.TryPick("zzz", out _));
    }

    [Fact]
    public void TryPick_DrainingWorker_IsSkippedAndAllDrainingIsNoRoutableWorker()
    {
        var registry = new WorkerRegistry();
        registry.Apply(Snapshots.Create([
            Snapshots.Worker("a", "http://127.0.0.1:1/", "m"),
            Snapshots.Worker("b", "http://127.0.0.1:2/", "m"),
        ]));
        registry.Current.Find("a")!.Draining = true;

        Assert.All(Enumerable.Range(0, 4), _ => Assert.Equal("b", Pick(registry, "m")));

        registry.Current.Find("b")!.Draining = true;
        Assert.Equal(PickOutcome.NoRoutableWorker, registry.TryPick("m", out _));
        Assert.False(registry.HasRoutableWorker());
    }

    [Fact]
    public void Apply_SameNameAndUrl_KeepsTheStateAndOtherwiseReplacesOrRemovesIt()
    {
        var registry = new WorkerRegistry();
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
        Assert.Equal("a", Pick(registry, "n"));
    }

    [Fact]
    public void ModelListReader_VllmModelsFixture_ReadsTheIds()
    {
        Assert.True(ModelListReader.TryReadIds(Fixtures.Bytes("openai/models.json"), out var ids));
        Assert.Equal(["Qwen/Qwen2.5-Coder-1.5B-Instruct", "lora-1", "lora-2"], ids.ToArray());
        Assert.False(ModelListReader.TryReadIds("not json"u8, out _));
    }

    private static string Pick(WorkerRegistry registry, string model)
    {
        Assert.Equal(PickOutcome.Picked, registry.TryPick(model, out var worker));
        return worker!.Name;
    }
}
