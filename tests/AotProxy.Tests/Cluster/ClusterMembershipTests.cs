using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Tests.Configuration;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// ClusterMembership in process against a real redis-server (tests/Shared/RedisServer.cs): each
// beat writes a record that expires member_ttl later, the members read each other's records back,
// and a clean stop removes its record at once instead of leaving it to expire.
public sealed class ClusterMembershipTests : IAsyncLifetime
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(100);

    // Long enough that a record can only leave the list by the goodbye, not by expiring.
    private static readonly TimeSpan MemberTtl = TimeSpan.FromMinutes(1);

    private OneReplicaStore _store = null!;

    private IDatabase Db => _store.Db;

    public async Task InitializeAsync() => _store = await OneReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task TwoMembers_SeeEachOther_AndACleanStopLeavesTheListAtOnce()
    {
        var first = Start("one", "[[tenants]]\nname = \"a\"\n", inFlight: 3);
        var second = Start("two", "[[tenants]]\nname = \"b\"\n", inFlight: 0);
        await using (second)
        {
            await using (first)
            {
                Assert.True(await TestConfig.WaitUntil(() => Names(first) == "one,two" && Names(second) == "one,two"), $"members: {Names(first)} / {Names(second)}");
                var view = first.Current;
                Assert.True(view.StoreUp);
                var one = view.Members.Single(m => m.Name == "one");
                Assert.Equal(3, one.InFlight);
                Assert.InRange(one.ExpiresIn, TimeSpan.FromSeconds(50), MemberTtl);
                Assert.NotEqual(one.Digest, view.Members.Single(m => m.Name == "two").Digest);
                Assert.Null(view.MajorityDigest); // one config each: both are flagged
            }

            Assert.True(await TestConfig.WaitUntil(() => Names(second) == "two"), $"members after one stopped: {Names(second)}");
        }
    }

    [Fact]
    public async Task AStoreThatGoesAway_IsDown_UntilItIsBack()
    {
        await using var member = Start("one", "", inFlight: 0);
        Assert.True(await TestConfig.WaitUntil(() => member.Current.StoreUp), member.Current.Error);

        await _store.Server.StopAsync();
        Assert.True(await TestConfig.WaitUntil(() => !member.Current.StoreUp), "the store is reported down");
        Assert.NotNull(member.Current.StoreDownSince);
        Assert.Equal("one", Names(member)); // the last list known

        await _store.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(() => member.Current.StoreUp, TimeSpan.FromSeconds(15)), member.Current.Error);
        Assert.Equal("one", Names(member));
        Assert.True(member.Current.StoreFailures > 0);
    }

    // A replica that died holding 2 of its tenant's 3 in flight and 50 of 70 tokens reserved: two
    // live members both find its record gone, and its parts are subtracted exactly once; another
    // replica's parts stay.
    [Fact]
    public async Task ADeadReplicasParts_AreReapedExactlyOnce_ByTheLiveMembers()
    {
        var db = Db;
        await db.SetAddAsync("aotproxy:members", "ghost");
        await db.HashSetAsync("aotproxy:res:ghost", [new("t|acme|in_flight", 2), new("t|acme|budget_reserved", 50)]);
        await db.HashSetAsync("aotproxy:res:back", [new("t|acme|in_flight", 1), new("t|acme|budget_reserved", 20)]);
        await db.HashSetAsync("aotproxy:tenant:acme", [new("in_flight", 3), new("budget_reserved", 70)]);

        await using var first = Start("one", "", inFlight: 0);
        await using var second = Start("two", "", inFlight: 0);
        Assert.True(await TestConfig.WaitUntil(() => Names(first) == "one,two" && Names(second) == "one,two"), $"members: {Names(first)} / {Names(second)}");

        Assert.False(await db.KeyExistsAsync("aotproxy:res:ghost"));
        Assert.False(await db.SetContainsAsync("aotproxy:members", "ghost"));
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(20, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.True(await db.KeyExistsAsync("aotproxy:res:back"));
    }

    // A replica restarted under its name before its record expired is never found dead, so its
    // previous life's parts would count for ever: it releases them itself, before it shares its
    // connection (no request of this life has reserved anything yet).
    [Fact]
    public async Task AReplicaRestartedUnderItsName_ReleasesItsPreviousLifesParts_BeforeItAdmits()
    {
        var db = Db;
        await db.HashSetAsync("aotproxy:member:one", "name", "one"); // its last life's record, not expired yet
        await db.HashSetAsync("aotproxy:res:one", [new("t|acme|in_flight", 2), new("t|acme|usd_reserved_nanos", 900)]);
        await db.HashSetAsync("aotproxy:tenant:acme", [new("in_flight", 3), new("usd_reserved_nanos", 1000)]);

        await using var one = Start("one", "", inFlight: 0);
        Assert.True(await TestConfig.WaitUntil(() => one.Connection is not null), "the connection is shared");

        Assert.False(await db.KeyExistsAsync("aotproxy:res:one"));
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(100, (long)await db.HashGetAsync("aotproxy:tenant:acme", "usd_reserved_nanos"));
    }

    // Redis restarted empty while replica "two" died with it: "one" reaches the store again, but its
    // shared decisions wait for two's seed of the new epoch (member_ttl + 2 x heartbeat at most),
    // decided alone by store_down meanwhile, and /api/cluster and /ready say so (Health); then it
    // is healthy. Seen failing before: healthy as soon as the store answered.
    [Fact]
    public async Task BackEmpty_AReplicaIsResyncing_UntilTheNewEpochSettles_ThenHealthy()
    {
        var ttl = TimeSpan.FromSeconds(5);
        await using var one = Start("one", "", inFlight: 0, ttl, resync: true);
        var two = Start("two", "", inFlight: 0, ttl, resync: true);
        try
        {
            Assert.True(await TestConfig.WaitUntil(() => Names(one) == "one,two" && Names(two) == "one,two"), $"members: {Names(one)} / {Names(two)}");
            Assert.True(await TestConfig.WaitUntil(async () => await SeededAsync("one", "two")), "both seeded the epoch");
            await BeatsAsync(one, 2); // one's resync has settled the epoch with both listed
            Assert.Equal(ClusterHealth.Healthy, one.Health);
            Assert.Null(one.DegradedSince);

            await _store.Server.StopAsync();
            Assert.True(await TestConfig.WaitUntil(() => one.Health == ClusterHealth.StoreUnreachable), "the store is reported down");
            Assert.NotNull(one.DegradedSince);
        }
        finally
        {
            await two.DisposeAsync(); // gone with the store: it never seeds the next epoch
        }

        await _store.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(() => one.Current.StoreUp, TimeSpan.FromSeconds(15)), one.Current.Error);
        Assert.Equal(ClusterHealth.Resyncing, one.Health);
        Assert.NotNull(one.DegradedSince);
        Assert.True(await TestConfig.WaitUntil(() => one.Health == ClusterHealth.Healthy, TimeSpan.FromSeconds(20)), $"{one.Health}");
        Assert.Null(one.DegradedSince);
    }

    // A clean stop right after 200 requests ended: their settlements are fire-and-forget scripts
    // on the replica's one connection, and the stop's DEL of its record and its reap are awaited on
    // that connection after them, so Redis has run every settlement before the connection closes:
    // the budget's spend holds all of them (in_flight and the reservations would reach 0 by the
    // reap alone; the spend only by the settlements).
    [Fact]
    public async Task ACleanStop_RightAfterTheRequestsEnded_LosesNoSettlement()
    {
        const int Requests = 200;
        var member = Start("one", "", inFlight: 0);
        Assert.True(await TestConfig.WaitUntil(() => member.Connection is not null), "the connection is shared");
        var limits = new SharedTenantLimits(() => member.Connection, () => member.Name);
        var demand = new SharedDemand("acme", 0, 0, 0, Requests, new TenantBudgetModel(1_000_000, 0, 0, 0), 100, 0, SharedDemand.MonthOf(DateTimeOffset.UtcNow));
        var takes = new List<SharedTake>();
        for (var i = 0; i < Requests; i++)
        {
            takes.Add(await limits.TryAdmitAsync(demand));
        }

        Assert.All(takes, t => Assert.True(t.Taken));
        var usage = new Usage(30, 10);
        foreach (var take in takes)
        {
            new SharedPlace(limits, demand, take.Second).Settle(admitted: true, usage, default);
        }

        await member.DisposeAsync();
        Assert.Equal(Requests * usage.TotalTokens, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_spent"));
        Assert.Equal(0, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.Equal(0, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
    }

    private ClusterMembership Start(string name, string policy, long inFlight, TimeSpan? memberTtl = null, bool resync = false) =>
        _store.StartMember(name, Heartbeat, memberTtl ?? MemberTtl, policy, inFlight, resync);

    private async Task<bool> SeededAsync(params string[] names)
    {
        var epoch = (string?)await Db.StringGetAsync("aotproxy:epoch");
        return epoch is not null && (await Db.SetMembersAsync($"aotproxy:seeded:{epoch}")).Select(v => (string)v!).ToHashSet().IsSupersetOf(names);
    }

    // Until the member has published `count` more views: each beat runs the resync after it
    // publishes, so the beat before the last one has run its resync.
    private static async Task BeatsAsync(ClusterMembership member, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var seen = member.Current.MembersAt;
            Assert.True(await TestConfig.WaitUntil(() => member.Current.MembersAt > seen), "the member beats");
        }
    }

    private static string Names(ClusterMembership membership) => string.Join(',', membership.Current.Members.Select(m => m.Name));
}
