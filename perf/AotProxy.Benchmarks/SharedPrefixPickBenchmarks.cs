using AotProxy.Configuration;
using AotProxy.Inspection;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Benchmarks;

// Issue 19: p2c_kv's pick for a 2,000-token prompt whose shared system prefix one worker caches,
// over 4, 16 and 64 workers with fresh gauges: every candidate's cache model is looked up (a
// binary search over the prompt's 32 chunks). Pick is Router.Pick alone; PickAndSend adds what the
// forwarding stage does at the send and the end (PrefillLease: the prompt recorded in the picked
// worker's model, the token load added and returned), which main's Pick did inside (its prefix
// record). Expected: no allocation.
[MemoryDiagnoser]
public class SharedPrefixPickBenchmarks
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    private readonly Router _router = new(TimeProvider.System, new Random(1), NullLogger.Instance);
    private readonly PrefillLease _lease = new();
    private GatewaySnapshot _snapshot = null!;
    private WorkerPool _pool = null!;
    private RouteRequest _request;

    [Params(4, 16, 64)]
    public int Workers { get; set; } = 4;

    [GlobalSetup]
    public void Setup()
    {
        var workers = Enumerable.Range(0, Workers)
            .Select(i => Snapshots.Worker($"gpu-{i}", $"http://10.0.{i / 200}.{(i % 200) + 1}:8000/", Model) with { MaxConcurrency = 1_000_000 })
            .ToArray();
        _snapshot = Snapshots.Create(workers, routing: Snapshots.Defaults.Routing with { Strategy = RoutingStrategyNames.P2cKv });
        _pool = new WorkerRegistry(TimeProvider.System).Build(_snapshot, WorkerSet.Empty).Pools[Model];
        for (var i = 0; i < _pool.Workers.Length; i++)
        {
            _pool.Workers[i].OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load, Running = i % 5, Waiting = 0, KvCacheUsage = 0.1 * (i % 10) });
        }

        // A 6,000-byte system message shared by every request and a unique 2,000-byte question: ~2,000 tokens.
        var system = new string('s', 6000);
        var body = System.Text.Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"{{new string('q', 2000)}}"}],"stream":true}""");
        var chunks = new ulong[PromptChunks.Max];
        RequestInspector.Inspect(body, chunks, out var inspected, out _);
        _request = new RouteRequest(inspected.PrefixHash, inspected.PrefixHash, chunks.AsMemory(0, inspected.PromptChunks), inspected.PromptTokens);

        // Worker 1 caches the prompt.
        _lease.Start(_pool.Workers[1], _request, stream: true, _snapshot.Routing);
        _lease.End();
        if (Pick() < 0 || PickAndSend() < 0 || _pool.Workers[1].CachedTokens(_request, long.MinValue) < 1900)
        {
            throw new InvalidOperationException("the router does not pick as intended");
        }
    }

    [Benchmark]
    public int Pick()
    {
        ulong tried = 0;
        var slot = default(WorkerSlot);
        var picked = _router.Pick(_pool, _snapshot, _request, ref tried, ref slot, out _) is { } worker ? Array.IndexOf(_pool.Workers, worker) : -1;
        slot.Release();
        return picked;
    }

    [Benchmark]
    public int PickAndSend()
    {
        ulong tried = 0;
        var slot = default(WorkerSlot);
        var worker = _router.Pick(_pool, _snapshot, _request, ref tried, ref slot, out _);
        if (worker is not null)
        {
            _lease.Start(worker, _request, stream: true, _snapshot.Routing);
            _lease.End();
        }

        slot.Release();
        return worker is null ? -1 : 0;
    }
}
