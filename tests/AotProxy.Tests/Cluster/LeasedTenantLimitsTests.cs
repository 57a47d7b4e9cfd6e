using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Limits;
using AotProxy.Tests.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A tenant's limits without a budget taken in leased blocks (TenantLease): a replica far from the
// limits decides most requests against what it leased, with no script; near them the blocks shrink
// to one request, and what a block holds unused goes back to its bin when its second ends.
public sealed class LeasedTenantLimitsTests : IAsyncLifetime
{
    private const int Month = 202612;

    private TwoReplicaStore _store = null!;

    public async Task InitializeAsync() => _store = await TwoReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    // 200 requests far from every limit: the blocks double while they run out within a second,
    // so a few scripts decide them all (one per request before the leases).
    [Fact]
    public async Task ManyRequestsFarFromTheLimits_CostFarFewerScriptsThanRequests()
    {
        const int Requests = 200;
        var (one, _) = Replicas();
        var demand = Demand(rpm: 1_000_000, tpm: 1_000_000_000, tokens: 50, maxInFlight: 10_000);
        for (var i = 0; i < Requests; i++)
        {
            var taken = await one.TryAdmitAsync(demand);
            Assert.True(taken.Taken);
            new SharedPlace(one, demand, taken.Second).Settle(admitted: true, new Usage(10, 20), default);
        }

        Assert.InRange(await Scripts(), 1, Requests / 10);
    }

    // 64 requests at once on an empty block: one call at a time, the others waiting for it and
    // taking what it leased, so the scripts are the doublings of the block, not one per request.
    [Fact]
    public async Task ConcurrentRequestsOnAnEmptyBlock_WaitForOneCall()
    {
        const int Requests = 64;
        var (one, _) = Replicas();
        var demand = Demand(rpm: 1_000_000, tpm: 1_000_000_000, tokens: 50, maxInFlight: 10_000);

        var takes = await Task.WhenAll(Enumerable.Range(0, Requests).Select(_ => Task.Run(() => one.TryAdmitAsync(demand).AsTask())));

        Assert.All(takes, t => Assert.True(t.Taken));
        Assert.InRange(await Scripts(), 1, Requests / 4);
    }

    // 40 requests at once for an rpm of 5: the requests waiting for a call that the rpm refused are
    // refused with it, not sent one script after another.
    [Fact]
    public async Task RequestsWaitingForACallTheRpmRefused_AreRefusedWithIt()
    {
        const int Rpm = 5;
        var (one, _) = Replicas();
        var demand = Demand(rpm: Rpm);

        var takes = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Task.Run(() => one.TryAdmitAsync(demand).AsTask())));

        Assert.Equal(Rpm, takes.Count(t => t.Taken));
        Assert.All(takes.Where(t => !t.Taken), t => Assert.Equal((LimitRefusal.Requests, true), (t.Refusal, t.RetryAfter >= TimeSpan.FromSeconds(1))));
        Assert.InRange(await Scripts(), Rpm + 1, 30); // each refused on its own: 40
    }

    // Two replicas of a fleet of two race 3 x 40 requests each at once for an rpm of 100: the
    // blocks never let more than 100 in, and once their second has ended the bins hold exactly the
    // requests taken (what the blocks held unused went back at a flush).
    [Fact]
    public async Task TwoReplicasRacingNearTheRpm_NeverTakeMoreThanIt_AndTheBinsEndAtWhatWasTaken()
    {
        const int Rpm = 100;
        var (one, two) = Replicas(members: 2);
        var demand = Demand(rpm: Rpm);
        var taken = 0;
        for (var round = 0; round < 3; round++)
        {
            var takes = await Task.WhenAll(Enumerable.Range(0, 80).Select(i => (i % 2 == 0 ? one : two).TryAdmitAsync(demand).AsTask()));
            Assert.All(takes.Where(t => !t.Taken), t => Assert.Equal(LimitRefusal.Requests, t.Refusal));
            taken += takes.Count(t => t.Taken);
        }

        Assert.InRange(taken, 1, Rpm);
        Assert.InRange(await Counted("aotproxy:rpm:acme"), taken, Rpm);
        Assert.True(await TestConfig.WaitUntil(async () =>
        {
            await Task.WhenAll(one.FlushAsync(), two.FlushAsync());
            return await Counted("aotproxy:rpm:acme") == taken;
        }), "the blocks' unused requests go back to their bins");
    }

    // A block that ran out within its second asks for twice as much, so requests in a row soon
    // leave some of a block unused: the bin holds more than was taken until the second ends, then
    // exactly what was taken (requests and tokens).
    [Fact]
    public async Task ABlocksUnusedUnits_GoBackToTheirBin_WhenItsSecondEnds()
    {
        var (one, _) = Replicas();
        var demand = Demand(rpm: 1_000_000, tpm: 1_000_000_000, tokens: 7);
        var taken = 0;
        while (taken < 100 && await Counted("aotproxy:rpm:acme") == taken)
        {
            Assert.True((await one.TryAdmitAsync(demand)).Taken);
            taken++;
        }

        Assert.True(await Counted("aotproxy:rpm:acme") > taken, "a block holds requests unused");
        Assert.True(await TestConfig.WaitUntil(async () =>
        {
            await one.FlushAsync();
            return await Counted("aotproxy:rpm:acme") == taken;
        }), "the unused requests go back when the second ends");
        Assert.Equal(7 * taken, await Counted("aotproxy:tpm:acme"));
    }

    // A request that never went upstream gives its request and tokens back; one that did moves
    // its tokens to its usage, at the next flush.
    [Fact]
    public async Task Settlements_ReachTheBinsAtTheNextFlush()
    {
        var (one, _) = Replicas();
        var demand = Demand(rpm: 10, tpm: 1000, tokens: 100);
        var first = await one.TryAdmitAsync(demand);
        var second = await one.TryAdmitAsync(demand);
        Assert.True(first.Taken && second.Taken);

        new SharedPlace(one, demand, first.Second).Settle(admitted: true, new Usage(20, 10), default);
        new SharedPlace(one, demand, second.Second).Settle(admitted: false, null, default);
        Assert.True(await TestConfig.WaitUntil(async () =>
        {
            await one.FlushAsync();
            return await Counted("aotproxy:rpm:acme") == 1;
        }), "the request that never went upstream gives its place back");
        Assert.Equal(30, await Counted("aotproxy:tpm:acme"));
    }

    // max_in_flight 6 in a fleet of two, where no block holds more than the request (6 / 16 < 1):
    // 6 of 12 hold a place, whichever replica asks, and each replica's part is its places.
    [Fact]
    public async Task MaxInFlight_HoldsExactlyAcrossTwoReplicas()
    {
        const int Max = 6;
        var (one, two) = Replicas(members: 2);
        var demand = Demand(maxInFlight: Max);

        var takes = await Task.WhenAll(Enumerable.Range(0, 2 * Max).Select(i => (i % 2 == 0 ? one : two).TryAdmitAsync(demand).AsTask()));

        Assert.Equal(Max, takes.Count(t => t.Taken));
        Assert.All(takes.Where(t => !t.Taken), t => Assert.Equal(LimitRefusal.InFlight, t.Refusal));
        var db = _store.One.GetDatabase();
        Assert.Equal(Max, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(Max, await Part("one") + await Part("two"));
    }

    // Far from max_in_flight a block leases as many spare places as are in use: a release keeps
    // at most as many spare as are used, and a flush that finds no place taken since the last one
    // gives the spare back, so the part comes down to the places in use.
    [Fact]
    public async Task PlacesLeasedAboveUse_AreGivenBack()
    {
        var (one, _) = Replicas();
        var demand = Demand(maxInFlight: 10_000);
        var takes = new List<SharedTake>();
        for (var i = 0; i < 12; i++)
        {
            takes.Add(await one.TryAdmitAsync(demand));
        }

        Assert.True(await Part("one") > 12, "a block leases places ahead of use");
        foreach (var take in takes.Skip(2))
        {
            new SharedPlace(one, demand, take.Second).Settle(admitted: true, new Usage(1, 1), default);
        }

        await one.FlushAsync();
        Assert.InRange(await Part("one"), 2, 4); // at most as many spare as used
        await one.FlushAsync();
        Assert.Equal(2, await Part("one")); // idle for a flush: none spare
        Assert.Equal(2, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:tenant:acme", "in_flight"));
    }

    // A replica that died holding a block of places: the reaper subtracts them all, used or not,
    // and the other replica's part stays.
    [Fact]
    public async Task TheReaper_SubtractsADeadReplicasLeasedPlaces()
    {
        var (one, two) = Replicas();
        var demand = Demand(maxInFlight: 10_000);
        for (var i = 0; i < 9; i++)
        {
            Assert.True((await one.TryAdmitAsync(demand)).Taken);
        }

        Assert.True((await two.TryAdmitAsync(demand)).Taken);
        Assert.True(await Part("one") > 9, "spare places leased");
        var db = _store.One.GetDatabase();
        await db.SetAddAsync("aotproxy:members", "one"); // listed, with no record: dead

        Assert.Equal(1, await ReplicaReaper.ReapAsync(db, "one"));
        Assert.Equal(await Part("two"), (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(1, await Part("two"));
    }

    // Redis restarted empty while replica one holds 9 places in use and more leased: its resync
    // drops the lease, so the part it puts back, and the tenant's in_flight, are the 9 in use;
    // their settlements then bring both to 0 (through the flush).
    [Fact]
    public async Task AfterAnEmptyRestart_TheResyncPutsBackThePlacesInUse_NotTheLease()
    {
        var snapshot = TestConfig.Valid($"""
            [cluster]
            redis_url = "{_store.Server.Url}"
            replica = "one"
            """);
        var member = new ClusterMember("one", "i", "v", "d", 1, 0, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, TimeSpan.Zero, TimeSpan.Zero);
        var view = ClusterView.Starting with { Members = [member] };
        var telemetry = new ClusterTelemetry(new GatewayTelemetry().Registry, () => view);
        var policy = new StoreDownPolicy(snapshot.Cluster, () => view, telemetry, TimeProvider.System, NullLogger.Instance);
        var resync = new StoreResync(() => "one", new TenantLimits(TimeProvider.System), policy, telemetry, NullLogger.Instance);
        var one = new SharedTenantLimits(() => _store.One, () => "one", policy);
        var db = _store.One.GetDatabase();
        await resync.RunAsync(db);
        var demand = Demand(maxInFlight: 10_000);
        var takes = new List<SharedTake>();
        for (var i = 0; i < 9; i++)
        {
            takes.Add(await one.TryAdmitAsync(demand));
        }

        Assert.True(await Part("one") > 9, "spare places leased");
        await _store.Server.StopAsync();
        await _store.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(async () => _store.One.IsConnected && await db.PingAsync() > TimeSpan.Zero), "reconnected");
        await resync.RunAsync(db);

        Assert.Equal(9, await Part("one"));
        Assert.Equal(9, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        foreach (var take in takes)
        {
            new SharedPlace(one, demand, take.Second).Settle(admitted: true, new Usage(1, 1), default);
        }

        await one.FlushAsync();
        await one.FlushAsync(); // the last spare place, idle
        Assert.Equal(0, await Part("one"));
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
    }

    // A demand with a budget reserves real amounts: one admit and one settle per request.
    [Fact]
    public async Task BudgetedDemands_StillTakeOneScriptPerRequest()
    {
        const int Requests = 10;
        var (one, _) = Replicas();
        var demand = Demand(rpm: 1_000_000, maxInFlight: 10_000, budget: new TenantBudgetModel(1_000_000, 0, 0, 0), budgetTokens: 5);
        for (var i = 0; i < Requests; i++)
        {
            var taken = await one.TryAdmitAsync(demand);
            Assert.True(taken.Taken);
            new SharedPlace(one, demand, taken.Second).Settle(admitted: true, new Usage(1, 1), default);
        }

        await _store.One.GetDatabase().PingAsync(); // the settlements ran
        Assert.Equal(2 * Requests, await Scripts() - 1); // the first admit's NOSCRIPT went again as text
    }

    private async Task<long> Counted(string key)
    {
        var bins = await _store.One.GetDatabase().HashValuesAsync(key);
        return bins.Sum(b => (long)b);
    }

    private async Task<long> Part(string replica) => (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:res:" + replica, "t|acme|in_flight");

    private async Task<long> Scripts()
    {
        Assert.True(RedisAddress.TryParse(_store.Server.Url, out var address, out var error), error);
        var options = address.Options();
        options.AllowAdmin = true; // INFO
        await using var admin = await ConnectionMultiplexer.ConnectAsync(options);
        var stats = (await admin.GetServer(admin.GetEndPoints()[0]).InfoRawAsync("commandstats"))!;
        return Calls(stats, "eval") + Calls(stats, "evalsha");
    }

    private static long Calls(string commandStats, string command)
    {
        var line = commandStats.Split('\n').FirstOrDefault(l => l.StartsWith($"cmdstat_{command}:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static SharedDemand Demand(long rpm = 0, long tpm = 0, long tokens = 0, int maxInFlight = 0, TenantBudgetModel? budget = null, long budgetTokens = 0) =>
        new("acme", rpm, tpm, tokens, maxInFlight, budget, budgetTokens, 0, Month);

    private (SharedTenantLimits One, SharedTenantLimits Two) Replicas(int members = 1) =>
        (new SharedTenantLimits(() => _store.One, () => "one", members: () => members), new SharedTenantLimits(() => _store.Two, () => "two", members: () => members));
}
