using System.Diagnostics;
using System.Globalization;
using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Testing;
using BenchmarkDotNet.Attributes;
using StackExchange.Redis;

namespace AotProxy.Benchmarks;

// The shared decisions of one request of a limited tenant in cluster mode (issue 16, "Cost on the
// hot path"), against a real redis-server on loopback started for the run: the tenant's admit
// script and its settlement (SharedTenantLimits; a budgeted demand's per request, or leased blocks), the worker's grant and its release
// (SharedWorkerSlots), alone and as one cycle, beside a PING on the same connection (the floor: one
// round trip through StackExchange.Redis). The settle and the release are fire-and-forget, so their
// cost shows as bytes and as the next awaited call's wait behind them. The tenant's limits are far
// above what a run reaches (as perf/cluster.sh case 5's), so every decision is a grant. Allocation
// counts every thread (the client's reader and the release subscriber's parse included).
[MemoryDiagnoser]
public class SharedDecisionBenchmarks
{
    private const int MaxConcurrency = 1_000_000;
    private static readonly Usage Used = new(12, 1);

    private const string TrivialScript = "return 1";
    private static readonly RedisKey[] Keys = ["k"];
    private static readonly RedisValue[] Values = [1];

    private byte[] _trivialHash = null!;
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _connection = null!;
    private SharedTenantLimits _limits = null!;
    private SharedWorkerSlots _slots = null!;
    private SharedWorker _worker = null!;
    private WorkerState _leased = null!;
    private SharedDemand _demand;
    private SharedDemand _budgeted;

    [GlobalSetup]
    public void Setup()
    {
        _redis = RedisServer.StartAsync().GetAwaiter().GetResult();
        if (!RedisAddress.TryParse(_redis.Url, out var address, out var error))
        {
            throw new InvalidOperationException(error);
        }

        _connection = ConnectionMultiplexer.Connect(address.Options());
        _trivialHash = _connection.GetServers()[0].ScriptLoad(TrivialScript);
        _limits = new SharedTenantLimits(() => _connection, () => "bench");
        _limits.Start(); // the leases' returns, flushed every 100 ms as in the gateway
        _slots = new SharedWorkerSlots(() => _connection, () => "bench", () => 1, () => [], () => new CircuitBreakerModel(5, 2, TimeSpan.FromSeconds(30), 1, TimeSpan.FromSeconds(60)), TimeSpan.FromSeconds(1), TimeProvider.System);
        _slots.Start();
        _worker = new SharedWorker(_slots, "w");
        _leased = new WorkerState(new WorkerModel("leased", new Uri("http://127.0.0.1:1/"), ["m"], MaxConcurrency, 1, ""), TimeProvider.System);
        _demand = new SharedDemand("bench", Rpm: 1_000_000_000, Tpm: 1_000_000_000, Tokens: 13, MaxInFlight: 100_000, Budget: null, BudgetTokens: 0, BudgetNanos: 0, Month: SharedDemand.MonthOf(DateTimeOffset.UtcNow));
        _budgeted = _demand with { Budget = new TenantBudgetModel(long.MaxValue / 4, 0, 0, 0), BudgetTokens = 13 };
        if (!AdmitAndSettle().GetAwaiter().GetResult() || !LeasedAdmitAndSettle().GetAwaiter().GetResult() || !GrantAndRelease().GetAwaiter().GetResult() || !LeasedTakeAndRelease().GetAwaiter().GetResult())
        {
            throw new InvalidOperationException("the shared decisions refuse");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        // Which commands the client really sent: EVAL (the script's text) or EVALSHA (its hash).
        // redis-cli: the client's INFO needs admin mode, which the gateway does not use.
        var cli = Process.Start(new ProcessStartInfo("redis-cli", ["-p", _redis.Port.ToString(CultureInfo.InvariantCulture), "info", "commandstats"]) { RedirectStandardOutput = true })!;
        foreach (var line in cli.StandardOutput.ReadToEnd().Split('\n').Where(l => l.Contains("eval", StringComparison.Ordinal) || l.Contains("script", StringComparison.Ordinal)))
        {
            Console.WriteLine($"// redis {line.Trim()}");
        }

        cli.WaitForExit();
        _slots.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _limits.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _connection.Dispose();
        _redis.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true)]
    public async Task<bool> Ping() => await _connection.GetDatabase().PingAsync() > TimeSpan.Zero;

    // The client's cost of a script alone: a one-line script given as text (the client looks its
    // hash up and sends EVALSHA), and the same by its hash, fire-and-forget likewise.
    [Benchmark]
    public async Task<bool> ScriptByText()
    {
        var db = _connection.GetDatabase();
        _ = db.ScriptEvaluateAsync(TrivialScript, Keys, Values, CommandFlags.FireAndForget);
        return (long)await db.ScriptEvaluateAsync(TrivialScript, Keys, Values) == 1;
    }

    [Benchmark]
    public async Task<bool> ScriptByHash()
    {
        var db = _connection.GetDatabase();
        _ = db.ScriptEvaluateAsync(_trivialHash, Keys, Values, CommandFlags.FireAndForget);
        return (long)await db.ScriptEvaluateAsync(_trivialHash, Keys, Values) == 1;
    }

    // SharedTenantLimits, per request (a demand with a budget): the admit script, then its settle
    // (fire-and-forget).
    [Benchmark]
    public async Task<bool> AdmitAndSettle()
    {
        var take = await _limits.TryAdmitAsync(_budgeted);
        new SharedPlace(_limits, _budgeted, take.Second).Settle(admitted: true, Used, default);
        return take.Taken;
    }

    // SharedTenantLimits in leased blocks (no budget, perf/cluster.sh case 5's tenant): most admits
    // take the tenant's block with no call, the settlement waits for the flush.
    [Benchmark]
    public async Task<bool> LeasedAdmitAndSettle()
    {
        var take = await _limits.TryAdmitAsync(_demand);
        new SharedPlace(_limits, _demand, take.Second).Settle(admitted: true, Used, default);
        return take.Taken;
    }

    // SharedWorkerSlots: the grant script, then its release (fire-and-forget, with the publish).
    [Benchmark]
    public async Task<bool> GrantAndRelease()
    {
        var taken = await _slots.TryGrantAsync(_worker, MaxConcurrency) == SharedTakeOutcome.Taken;
        _worker.Release(SlotGrant.Shared);
        return taken;
    }

    // The same slot from a lease (SlotLease): the first call's grant leases the slot, every later
    // one takes and gives it back here, with no Redis call (GrantAndRelease is the per-request
    // path it replaces on a worker far from full).
    [Benchmark]
    public async Task<bool> LeasedTakeAndRelease()
    {
        var grant = (await _slots.AcquireAsync(_leased, TimeSpan.Zero, CancellationToken.None)).Grant;
        _leased.Shared!.Release(grant);
        return grant == SlotGrant.Shared;
    }

    // One request's calls, in the data plane's order (the tenant's leased: mostly no call).
    [Benchmark]
    public async Task<bool> Cycle()
    {
        var take = await _limits.TryAdmitAsync(_demand);
        var granted = await _slots.TryGrantAsync(_worker, MaxConcurrency) == SharedTakeOutcome.Taken;
        _worker.Release(SlotGrant.Shared);
        new SharedPlace(_limits, _demand, take.Second).Settle(admitted: true, Used, default);
        return take.Taken && granted;
    }
}
