using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Ledger;
using AotProxy.Store;
using AotProxy.Tests.Configuration;
using AotProxy.Tests.Ledger;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// [cluster] with [store]: an epoch's budgets are the spend of every ledger file, each once
// (docs/CLUSTER.md, "Budgets from the shared ledger"). Each live replica charges its own file and
// claims it (aotproxy:seeded-ledgers:{epoch}); a replica that saw the epoch begin charges, once it
// settled, the files in Postgres nobody claimed: those of replicas that are gone. A real
// redis-server and a real postgres; the oracle for every sum is each ledger file read by the
// startup seed's own query (LedgerDatabase.ReadTotals), never a number the seed produced.
public sealed class LedgerSeedTests : IAsyncLifetime
{
    private static readonly string[] Budgeted = ["acme", "other"];

    private readonly ListLogger _log = new();
    private readonly List<LedgerFile> _files = [];
    private OneReplicaStore _redis = null!;
    private PostgresServer _postgres = null!;
    private PostgresAddress _address = null!;

    private IDatabase Db => _redis.Db;

    public async Task InitializeAsync()
    {
        _redis = await OneReplicaStore.StartAsync();
        _postgres = await PostgresServer.StartAsync();
        Assert.True(PostgresAddress.TryParse(_postgres.Url, out _address, out var error), error);
    }

    public async Task DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _postgres.DisposeAsync();
        foreach (var file in _files)
        {
            file.Dispose();
        }
    }

    // Before: replica A's epoch held A's spend only; the gone replica's, used up or not, was free
    // again (acme's budget_spent was A's alone).
    [Fact]
    public async Task ANewEpoch_HoldsTheGoneReplicasSpendFromPostgres_BesideEachLiveReplicasOwn()
    {
        var gone = await GoneReplicaAsync();
        var a = File(first: 100);
        await using var replicaA = await StartAsync("replica-a", a, ["replica-a"]);

        await replicaA.BeatAsync(Db);

        await AssertChargedAsync(gone, Totals(a));
        Assert.Contains(_log.Entries, e => e.EventId == 936);

        // B joins the epoch later, on a file that has shipped nothing yet: it adds its own.
        var b = File(first: 200);
        await using var replicaB = await StartAsync("replica-b", b, ["replica-a", "replica-b"]);
        await replicaB.BeatAsync(Db);
        await replicaA.BeatAsync(Db);

        await AssertChargedAsync(gone, Totals(a), Totals(b));
        Assert.Equal(3, await Db.SetLengthAsync(ClusterKeys.SeededLedgers(replicaA.Resync.Epoch!)));
    }

    // Both live replicas have shipped part of their files (the rest waits in them), and both see
    // the store come back empty, so both seed the gone replica's file: one claim wins. Before:
    // without the gone replica's spend in either epoch.
    [Fact]
    public async Task RedisRestartedEmpty_EachEpochHoldsEveryFilesSpendOnce_ThoughEveryReplicaSeedsFromPostgres()
    {
        var gone = await GoneReplicaAsync();
        var a = File(first: 100);
        var b = File(first: 200);
        await ShipAsync(a);
        await ShipAsync(b);
        a.Insert(Rows(7, first: 300));
        b.Insert(Rows(5, first: 400));
        string[] members = ["replica-a", "replica-b"];
        await using var replicaA = await StartAsync("replica-a", a, members);
        await using var replicaB = await StartAsync("replica-b", b, members);

        for (var epoch = 0; epoch < 2; epoch++)
        {
            await RestartEmptyAsync();
            // A waits for B's own seed before it reads Postgres, where B's file is too.
            await replicaA.BeatAsync(Db);
            await replicaB.BeatAsync(Db);
            await replicaA.BeatAsync(Db);
            await replicaB.BeatAsync(Db);

            await AssertChargedAsync(gone, Totals(a), Totals(b));
        }

        Assert.Equal(2, _log.Entries.Count(e => e.EventId == 932)); // two epochs, each begun once
    }

    // A replica's process restarted under another name on the same file (a renamed pod, a new
    // host name) joins the epoch its previous life seeded. Before: its name was new to the epoch,
    // so its file's spend was charged a second time (acme's budget_spent doubled).
    [Fact]
    public async Task AProcessRestartedUnderANewName_OnTheSameFile_DoesNotChargeItsSpendTwice()
    {
        var a = File(first: 100);
        await using (var first = await StartAsync("replica-a", a, ["replica-a"]))
        {
            await first.BeatAsync(Db);
        }

        await AssertChargedAsync(Totals(a));

        await using var renamed = await StartAsync("replica-a2", a, ["replica-a2"]);
        await renamed.BeatAsync(Db);

        await AssertChargedAsync(Totals(a));
        Assert.True(await Db.SetContainsAsync(ClusterKeys.Seeded(renamed.Resync.Epoch!), "replica-a2")); // its windows still seeded
    }

    // Postgres stopped when the epoch settles: said once, and a later beat seeds the gone
    // replica's spend, once. Before: never seeded.
    [Fact]
    public async Task APostgresThatDoesNotAnswer_DelaysTheSeedToALaterBeat_WhichChargesItOnce()
    {
        var gone = await GoneReplicaAsync();
        var a = File(first: 100);
        await using var replicaA = await StartAsync("replica-a", a, ["replica-a"]);
        await _postgres.StopAsync();

        await replicaA.BeatAsync(Db);
        await replicaA.BeatAsync(Db);

        await AssertChargedAsync(Totals(a));
        Assert.Single(_log.Entries, e => e.EventId == 937);

        await _postgres.RestartAsync();
        await replicaA.BeatAsync(Db);
        await replicaA.BeatAsync(Db);

        await AssertChargedAsync(gone, Totals(a));
        Assert.Single(_log.Entries, e => e.EventId == 936);
    }

    // The bound (docs/CLUSTER.md): B was not expected when A's epoch settled, so A's seed from
    // Postgres claimed B's file with the rows it had shipped; B's own seed then charges none of
    // its budgets, and its rows not yet shipped at that moment are left out. Nothing is counted
    // twice.
    [Fact]
    public async Task AReplicaNotExpected_WhoseFileWasSeededFromPostgresFirst_LeavesOutOnlyItsRowsNotYetShipped()
    {
        var gone = await GoneReplicaAsync();
        var b = File(first: 200);
        await ShipAsync(b);
        var shipped = Totals(b);
        b.Insert(Rows(5, first: 400));
        var a = File(first: 100);
        await using var replicaA = await StartAsync("replica-a", a, ["replica-a"]);
        await replicaA.BeatAsync(Db);

        await using var replicaB = await StartAsync("replica-b", b, ["replica-a", "replica-b"]);
        await replicaB.BeatAsync(Db);
        await replicaA.BeatAsync(Db);

        await AssertChargedAsync(gone, Totals(a), shipped);
        Assert.NotEqual(shipped, Totals(b));
    }

    // An epoch a replica only joined already holds what the replicas that saw it begin seeded;
    // here a replica of an older version, which claimed no file: it charged the gone replica's
    // file itself while it ran. Seeding from Postgres on joining would count that file twice.
    [Fact]
    public async Task AnEpochThisReplicaOnlyJoined_IsNotSeededFromPostgres_ByIt()
    {
        var gone = await GoneReplicaAsync();
        await Db.StringSetAsync(ClusterKeys.Epoch, "older");
        foreach (var tenant in Budgeted)
        {
            var of = gone.Single(t => t.Tenant == tenant);
            await Db.HashSetAsync(ClusterKeys.Tenant(tenant), [
                new("month", DateTimeOffset.UtcNow.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture)),
                new("budget_spent", of.LifetimeTokens), new("month_spent", of.MonthTokens),
                new("usd_spent_nanos", of.LifetimeCostNanos), new("month_usd_spent_nanos", of.MonthCostNanos)]);
        }

        var a = File(first: 100);
        await using var replicaA = await StartAsync("replica-a", a, ["replica-a"]);
        await replicaA.BeatAsync(Db);
        await replicaA.BeatAsync(Db);

        Assert.Equal("older", replicaA.Resync.Epoch);
        await AssertChargedAsync(gone, Totals(a));
        Assert.DoesNotContain(_log.Entries, e => e.EventId == 936);
    }

    // A replica that shipped its file to Postgres and is gone: the file is deleted (a pod's
    // emptyDir). Returns what it held, read before.
    private async Task<UsageTotals[]> GoneReplicaAsync()
    {
        using var file = new LedgerFile();
        file.Insert(Rows(23, first: 0));
        await ShipAsync(file);
        return Totals(file);
    }

    private async Task ShipAsync(LedgerFile file)
    {
        await using var shipper = new LedgerShipper(new PostgresLedger(_address), file.Path, 0, 500, TimeSpan.FromHours(1), TimeProvider.System, _log);
        await shipper.OpenAsync(seed: false, CancellationToken.None);
        Assert.True(await shipper.ShipAsync(CancellationToken.None));
    }

    private LedgerFile File(int first)
    {
        var file = new LedgerFile();
        _files.Add(file);
        file.Insert(Rows(11, first));
        return file;
    }

    private Task<SeedingReplica> StartAsync(string name, LedgerFile file, string[] members) =>
        SeedingReplica.StartAsync(name, file, _address, Snapshot(name), members, _log);

    private static UsageTotals[] Totals(LedgerFile file)
    {
        using var connection = file.Open();
        return LedgerDatabase.ReadTotals(connection, DateTimeOffset.UtcNow);
    }

    // Every budgeted tenant's four spend fields are the sum over the files; a tenant without a
    // budget is not charged at all.
    private async Task AssertChargedAsync(params UsageTotals[][] files)
    {
        foreach (var tenant in Budgeted)
        {
            var of = files.SelectMany(f => f).Where(t => t.Tenant == tenant).ToList();
            Assert.True(of.Count > 0);
            var fields = await Db.HashGetAsync(ClusterKeys.Tenant(tenant), ["budget_spent", "month_spent", "usd_spent_nanos", "month_usd_spent_nanos"]);
            Assert.Equal(
                [of.Sum(t => t.LifetimeTokens), of.Sum(t => t.MonthTokens), of.Sum(t => t.LifetimeCostNanos), of.Sum(t => t.MonthCostNanos)],
                fields.Select(f => (long)f));
        }

        Assert.False(await Db.KeyExistsAsync(ClusterKeys.Tenant("free")));
    }

    private async Task RestartEmptyAsync()
    {
        await _redis.Server.StopAsync();
        await _redis.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(TryPingAsync), "the connection to the restarted store came back");
    }

    private async Task<bool> TryPingAsync()
    {
        try
        {
            await Db.PingAsync();
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
    }

    // n rows over acme, other and free, in this month and the last (UTC), ids first, first + 1, ...
    private static RequestRecord[] Rows(int n, int first)
    {
        var now = DateTimeOffset.UtcNow;
        var month = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        return [.. Enumerable.Range(first, n).Select(i => LedgerFile.Row(
            tenant: Budgeted.Append("free").ElementAt(i % 3),
            time: i % 2 == 0 ? month + ((now - month) / 2) : month.AddDays(-3),
            prompt: 10 + i,
            completion: 1 + (i % 7),
            cost: 1_000L * (i + 1),
            id: "req-" + i))];
    }

    private static GatewaySnapshot Snapshot(string replica) => TestConfig.Valid($"""
        [cluster]
        redis_url = "redis://127.0.0.1:1"
        replica = "{replica}"

        [[tenants]]
        name = "acme"
        budget_tokens = 1000000

        [[tenants]]
        name = "other"
        monthly_budget_tokens = 1000000

        [[tenants]]
        name = "free"
        """);
}
