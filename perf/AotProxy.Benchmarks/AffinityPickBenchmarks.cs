using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// Issue 19's affinities in the route stage: one Router.Pick under p2c_kv for a request that names
// a LoRA adapter (LoraPlacement: residency bits per worker) and for one that carries a session
// (SessionAffinity: one table probe, then the sticky worker), against a plain p2c_kv pick of the
// base model in the same run. Workers serve the base model and 8 adapters, 2 slots each, with
// fresh gauges. Expected: no allocation, the same order of cost as the plain pick.
[MemoryDiagnoser]
public class AffinityPickBenchmarks
{
    private const string Base = "meta-llama/Llama-3.1-8B-Instruct";

    private static readonly string[] Adapters = [.. Enumerable.Range(0, 8).Select(i => $"lora-{i}")];

    private readonly Router _router = new(TimeProvider.System, new Random(1), NullLogger.Instance);
    private readonly RouteRequest _session = new(0, 0x5E55, SessionHash: 0x5E55);
    private GatewaySnapshot _snapshot = null!;
    private WorkerPool _base = null!;
    private WorkerPool _adapter = null!;

    [Params(4, 16)]
    public int Workers { get; set; } = 4;

    [GlobalSetup]
    public void Setup()
    {
        _snapshot = Snapshots.Create(routing: Snapshots.Defaults.Routing with { Strategy = RoutingStrategyNames.P2cKv });
        var workers = Enumerable.Range(0, Workers).Select(i =>
        {
            var worker = new WorkerState(Snapshots.Worker($"gpu-{i}", $"http://10.0.0.{i + 1}:8000/", [Base, .. Adapters]), TimeProvider.System);
            worker.DiscoveredAdapters = [.. Adapters.Select(a => new ListedModel(a, Base, a))];
            var running = (1UL << (1 + (i % 8))) | (1UL << (1 + ((i + 4) % 8))); // two of the adapters run on each
            worker.OnScraped(default(VllmMetrics) with
            {
                Present = VllmMetricFields.Load,
                Running = i % 5,
                Waiting = 0,
                KvCacheUsage = 0.1 * (i % 10),
                Lora = new LoraAdapters(true, 2, 2, 0, running, 0),
            });
            return worker;
        }).ToArray();
        var set = new WorkerSet(workers);
        (_base, _adapter) = (set.Pools[Base], set.Pools["lora-3"]);
        if (Plain() < 0 || Adapter() < 0 || Session() < 0 || Session() != Session())
        {
            throw new InvalidOperationException("the router does not pick as intended");
        }
    }

    // The peer: p2c_kv over the base model, no prefix, no session.
    [Benchmark(Baseline = true)]
    public int Plain() => WorkerPickBenchmarks.Pick(_router, _base, _snapshot, default);

    [Benchmark]
    public int Adapter() => WorkerPickBenchmarks.Pick(_router, _adapter, _snapshot, default);

    [Benchmark]
    public int Session() => WorkerPickBenchmarks.Pick(_router, _base, _snapshot, _session);
}
