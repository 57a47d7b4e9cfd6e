using AotProxy.Cluster;
using AotProxy.Tests.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Cluster;

// ClusterMembership in process against a real redis-server (tests/Shared/RedisServer.cs): each
// beat writes a record that expires member_ttl later, the members read each other's records back,
// and a clean stop removes its record at once instead of leaving it to expire.
public sealed class ClusterMembershipTests : IAsyncLifetime
{
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(100);

    // Long enough that a record can only leave the list by the goodbye, not by expiring.
    private static readonly TimeSpan MemberTtl = TimeSpan.FromMinutes(1);

    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _redis.DisposeAsync();

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

        await _redis.StopAsync();
        Assert.True(await TestConfig.WaitUntil(() => !member.Current.StoreUp), "the store is reported down");
        Assert.NotNull(member.Current.StoreDownSince);
        Assert.Equal("one", Names(member)); // the last list known

        await _redis.RestartAsync();
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
        await using var redis = await RedisConnections.ConnectAsync(_redis);
        var db = redis.GetDatabase();
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
        await using var redis = await RedisConnections.ConnectAsync(_redis);
        var db = redis.GetDatabase();
        await db.HashSetAsync("aotproxy:member:one", "name", "one"); // its last life's record, not expired yet
        await db.HashSetAsync("aotproxy:res:one", [new("t|acme|in_flight", 2), new("t|acme|usd_reserved_nanos", 900)]);
        await db.HashSetAsync("aotproxy:tenant:acme", [new("in_flight", 3), new("usd_reserved_nanos", 1000)]);

        await using var one = Start("one", "", inFlight: 0);
        Assert.True(await TestConfig.WaitUntil(() => one.Connection is not null), "the connection is shared");

        Assert.False(await db.KeyExistsAsync("aotproxy:res:one"));
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        Assert.Equal(100, (long)await db.HashGetAsync("aotproxy:tenant:acme", "usd_reserved_nanos"));
    }

    private ClusterMembership Start(string name, string policy, long inFlight)
    {
        var snapshot = TestConfig.Valid($"""
            [cluster]
            redis_url = "{_redis.Url}"
            replica = "{name}"
            heartbeat = "{Heartbeat.TotalMilliseconds}ms"
            member_ttl = "{MemberTtl.TotalSeconds}s"

            {policy}
            """);
        var membership = new ClusterMembership(snapshot.Cluster, () => snapshot, () => inFlight, TimeProvider.System, NullLogger.Instance);
        membership.Start(dataPort: 0);
        return membership;
    }

    private static string Names(ClusterMembership membership) => string.Join(',', membership.Current.Members.Select(m => m.Name));
}
