using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

// Workers on a manual clock, one pool of model "m", and a seeded random source: every pick in a
// policy test is reproducible.
internal sealed class TestPool
{
    public TestPool(int count, int[]? weights = null, RoutingModel? routing = null, int seed = 7, int maxConcurrency = 32)
    {
        Snapshot = Snapshots.Create(routing: routing);
        Workers = Enumerable.Range(0, count)
            .Select(i => new WorkerState(new WorkerModel($"w{i}", new Uri($"http://127.0.0.1:{20000 + i}/"), ["m"], maxConcurrency, weights?[i] ?? 1, ""), Time))
            .ToArray();
        Pool = new WorkerPool("m", Workers);
        Random = new Random(seed);
    }

    public FakeTimeProvider Time { get; } = new();

    public GatewaySnapshot Snapshot { get; private set; }

    public WorkerState[] Workers { get; }

    public WorkerPool Pool { get; }

    public Random Random { get; }

    public RoutingModel Routing => Snapshot.Routing;

    public TestPool With(Func<RoutingModel, RoutingModel> change)
    {
        Snapshot = Snapshots.Create(routing: change(Snapshot.Routing));
        return this;
    }

    public RouteContext Context(ulong prefix = 0, ulong key = 0, ulong excluded = 0) =>
        Context(new RouteRequest(prefix, key), excluded);

    public RouteContext Context(RouteRequest request, ulong excluded = 0) =>
        new(Snapshot.Routing, Snapshot.CircuitBreaker, Snapshot.Scheduler, request, Time, Random, excluded);

    // A prompt of `chunks` whole 256-byte chunks (Inspection/PromptChunks), told apart by `seed`.
    public static RouteRequest Prompt(int seed, int chunks = 32) =>
        new(0, 0, KvCacheModelTests.Chain(seed, chunks), (long)chunks * AotProxy.Inspection.PromptChunks.TokensPerChunk);

    // The prompt sent to worker i, as the forwarding stage records it there at the send.
    public void Send(int i, RouteRequest prompt)
    {
        var lease = new PrefillLease();
        lease.Start(Workers[i], prompt, stream: true, Routing);
        lease.End();
    }

    // A fresh scrape for worker i.
    public void Scrape(int i, double running, double waiting, double kv = 0) =>
        Workers[i].OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load, Running = running, Waiting = waiting, KvCacheUsage = kv });

    public void InFlight(int i, int count)
    {
        for (var n = 0; n < count; n++)
        {
            Workers[i].OnRequestStart();
        }
    }
}
