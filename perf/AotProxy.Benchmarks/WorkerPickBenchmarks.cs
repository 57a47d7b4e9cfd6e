using AotProxy.Routing;
using AotProxy.Tests.Support;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The route stage as it is today: round robin over a model's pool.
[MemoryDiagnoser]
public class WorkerPickBenchmarks
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    private readonly WorkerRegistry _registry = new();
    private readonly WorkerRegistry _halfDraining = new();

    [Params(2, 16)]
    public int Workers { get; set; } = 2;

    [GlobalSetup]
    public void Setup()
    {
        var workers = Enumerable.Range(0, Workers)
            .Select(i => Snapshots.Worker($"gpu-{i}", $"http://10.0.0.{i + 1}:8000/", Model))
            .ToArray();
        _registry.Apply(Snapshots.Create(workers));
        _halfDraining.Apply(Snapshots.Create(workers));
        foreach (var worker in _halfDraining.Current.Workers.Where((_, i) => i % 2 == 0))
        {
            worker.Draining = true;
        }

        _halfDraining.Rebuild();
        if (TryPick() != (int)PickOutcome.Picked || TryPickHalfDraining() != (int)PickOutcome.Picked || TryPickUnknownModel() != (int)PickOutcome.UnknownModel)
        {
            throw new InvalidOperationException("registry does not pick as intended");
        }
    }

    [Benchmark]
    public int TryPick() => (int)_registry.TryPick(Model, out _);

    // Every other worker draining: the cursor skips one on every second pick.
    [Benchmark]
    public int TryPickHalfDraining() => (int)_halfDraining.TryPick(Model, out _);

    [Benchmark]
    public int TryPickUnknownModel() => (int)_registry.TryPick("no-such-model", out _);
}
