using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Store;
using AotProxy.Tests.Ledger;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// One replica's resync as GatewayHost wires it with [cluster] and [store]: its budgets seeded from
// its own ledger file at start (a start with [cluster] reads no fleet totals), the file's shipper
// to the shared ledger, and a StoreResync with both. members: the names its last good heartbeat
// saw (whose seeds a new epoch waits for). No heartbeat runs: the test calls BeatAsync.
internal sealed class SeedingReplica(LedgerShipper shipper, TenantLimits limits, StoreResync resync) : IAsyncDisposable
{
    public LedgerShipper Shipper { get; } = shipper;

    public TenantLimits Limits { get; } = limits;

    public StoreResync Resync { get; } = resync;

    public static async Task<SeedingReplica> StartAsync(string name, LedgerFile file, PostgresAddress postgres, GatewaySnapshot snapshot, string[] members, ILogger log)
    {
        var shipper = new LedgerShipper(new PostgresLedger(postgres), file.Path, 0, 500, TimeSpan.FromHours(1), TimeProvider.System, log);
        Assert.Null(await shipper.OpenAsync(seed: false, CancellationToken.None));
        var limits = new TenantLimits(TimeProvider.System);
        using (var connection = file.Open())
        {
            limits.Seed(LedgerDatabase.ReadTotals(connection, DateTimeOffset.UtcNow));
        }

        limits.Apply(snapshot);
        var view = ClusterView.Starting with { Members = [.. members.Select(m => new ClusterMember(m, "i", "v", "d", 1, 0, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, TimeSpan.Zero, TimeSpan.Zero))] };
        var telemetry = new ClusterTelemetry(new GatewayTelemetry().Registry, () => view);
        var policy = new StoreDownPolicy(snapshot.Cluster, () => view, telemetry, TimeProvider.System, log);
        return new SeedingReplica(shipper, limits, new StoreResync(() => name, limits, policy, telemetry, log, shipper));
    }

    // One heartbeat's resync, then the seed from the shared ledger it started, if it did.
    public async Task BeatAsync(IDatabase db)
    {
        await Resync.RunAsync(db);
        await Resync.LedgerSeed;
    }

    public async ValueTask DisposeAsync()
    {
        await Resync.DisposeAsync();
        await Shipper.DisposeAsync();
    }
}
