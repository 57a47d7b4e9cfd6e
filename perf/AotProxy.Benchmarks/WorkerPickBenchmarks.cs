using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// The route stage: one Router.Pick per request, for the default strategy (p2c_kv, with and
// without a prompt prefix to look up) and for round robin, over pools of 2 and 16 workers with
// fresh gauges. Expected: no allocation (candidates live on the stack).
[MemoryDiagnoser]
public class WorkerPickBenchmarks
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    private readonly Router _router = new(TimeProvider.System, new Random(1), NullLogger.Instance);
    private GatewaySnapshot _p2c = null!;
    private GatewaySnapshot _roundRobin = null!;
    private WorkerPool _pool = null!;

    [Params(2, 16)]
    public int Workers { get; set; } = 2;

    [GlobalSetup]
    public void Setup()
    {
        var workers = Enumerable.Range(0, Workers)
            .Select(i => Snapshots.Worker($"gpu-{i}", $"http://10.0.0.{i + 1}:8000/", Model))
            .ToArray();
        _p2c = Snapshots.Create(workers, routing: Snapshots.Defaults.Routing with { Strategy = RoutingStrategyNames.P2cKv });
        _roundRobin = Snapshots.Create(workers, routing: Snapshots.Defaults.Routing with { Strategy = RoutingStrategyNames.RoundRobin });
        _pool = new WorkerRegistry(TimeProvider.System).Build(_p2c, WorkerSet.Empty).Pools[Model];
        for (var i = 0; i < _pool.Workers.Length; i++)
        {
            _pool.Workers[i].OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load, Running = i % 5, Waiting = i % 3, KvCacheUsage = 0.1 * (i % 10) });
        }

        if (P2c() < 0 || P2cWithPrefix() < 0 || RoundRobin() < 0)
        {
            throw new InvalidOperationException("the router does not pick as intended");
        }
    }

    [Benchmark]
    public int P2c() => Pick(_router, _pool, _p2c, default);

    // With a prefix: every candidate's prefix table is probed, and the pick is recorded.
    [Benchmark]
    public int P2cWithPrefix() => Pick(_router, _pool, _p2c, new RouteRequest(0x5EED, 0x5EED));

    [Benchmark]
    public int RoundRobin() => Pick(_router, _pool, _roundRobin, default);

    // The index of the picked worker, -1 for none. The pick takes a slot on it; the attempt's end gives it back.
    internal static int Pick(Router router, WorkerPool pool, GatewaySnapshot snapshot, RouteRequest request)
    {
        ulong tried = 0;
        var slot = default(WorkerSlot);
        var picked = router.Pick(pool, snapshot, request, ref tried, ref slot, out _) is { } worker ? Array.IndexOf(pool.Workers, worker) : -1;
        slot.Release();
        return picked;
    }
}
