using AotProxy.Configuration;
using AotProxy.Inspection;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// The route stage: one Router.Pick per request, for the default strategy (p2c_kv, with and
// without a prompt to look up) and for round robin, over pools of 2 to 64 workers with fresh
// gauges. The prompt (issue 19) is a 2,000-token chat whose 6,000-byte system message worker 1
// caches: every candidate's cache model is searched for its 32 chunks. P2cWithPrefixAndSend adds
// what the forwarding stage does at the send and the end (PrefillLease: the prompt recorded in
// the picked worker's model, the token load added and returned), which main's Pick did inside
// (its prefix record). Expected: no allocation (candidates live on the stack).
[MemoryDiagnoser]
public class WorkerPickBenchmarks
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    private readonly Router _router = new(TimeProvider.System, new Random(1), NullLogger.Instance);
    private readonly PrefillLease _lease = new();
    private GatewaySnapshot _p2c = null!;
    private GatewaySnapshot _roundRobin = null!;
    private WorkerPool _pool = null!;
    private RouteRequest _prompt;

    [Params(2, 4, 16, 64)]
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

        var body = System.Text.Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","messages":[{"role":"system","content":"{{new string('s', 6000)}}"},{"role":"user","content":"{{new string('q', 2000)}}"}],"stream":true}""");
        var chunks = new ulong[PromptChunks.Max];
        RequestInspector.Inspect(body, chunks, out var inspected, out _);
        _prompt = new RouteRequest(inspected.PrefixHash, inspected.PrefixHash, chunks.AsMemory(0, inspected.PromptChunks), inspected.PromptTokens);
        _lease.Start(_pool.Workers[1], _prompt, stream: true, _p2c.Routing);
        _lease.End();

        if (P2c() < 0 || P2cWithPrefix() < 0 || P2cWithPrefixAndSend() < 0 || RoundRobin() < 0 || _pool.Workers[1].CachedTokens(_prompt, long.MinValue) < 1900)
        {
            throw new InvalidOperationException("the router does not pick as intended");
        }
    }

    [Benchmark]
    public int P2c() => Pick(_router, _pool, _p2c, default);

    [Benchmark]
    public int P2cWithPrefix() => Pick(_router, _pool, _p2c, _prompt);

    [Benchmark]
    public int P2cWithPrefixAndSend()
    {
        ulong tried = 0;
        var slot = default(WorkerSlot);
        var worker = _router.Pick(_pool, _p2c, _prompt, ref tried, ref slot, out _);
        if (worker is not null)
        {
            _lease.Start(worker, _prompt, stream: true, _p2c.Routing);
            _lease.End();
        }

        slot.Release();
        return worker is null ? -1 : 0;
    }

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
