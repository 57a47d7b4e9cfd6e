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
