using AotProxy.Cluster;
using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

public sealed class ClusterConfigTests
{
    [Fact]
    public void Cluster_Absent_IsOff()
    {
        var cluster = TestConfig.Valid("").Cluster;

        Assert.False(cluster.Enabled);
        Assert.Null(cluster.Store);
        Assert.Equal(StoreDownModes.Local, cluster.StoreDown);
    }

    [Fact]
    public void Cluster_Keys_AreRead()
    {
        var cluster = TestConfig.Valid("""
            [cluster]
            redis_url = "redis://:s3cret@10.0.0.5:6380/2"
            replica = "gw-1"
            heartbeat = "500ms"
            member_ttl = "3s"
            store_down = "closed"
            """).Cluster;

        Assert.True(cluster.Enabled);
        Assert.Equal(new RedisAddress("10.0.0.5", 6380, null, "s3cret", 2, Tls: false), cluster.Store);
        Assert.Equal("gw-1", cluster.Replica);
        Assert.Equal(TimeSpan.FromMilliseconds(500), cluster.Heartbeat);
        Assert.Equal(TimeSpan.FromSeconds(3), cluster.MemberTtl);
        Assert.Equal(StoreDownModes.Closed, cluster.StoreDown);
    }

    [Theory]
    [InlineData("redis://localhost", "localhost", 6379, null, null, 0, false)]
    [InlineData("rediss://cache.internal:6390", "cache.internal", 6390, null, null, 0, true)]
    [InlineData("redis://app:pw%40x@127.0.0.1:7000/15", "127.0.0.1", 7000, "app", "pw@x", 15, false)]
    [InlineData("redis://pw@[::1]:6379", "::1", 6379, null, "pw", 0, false)]
    public void RedisUrl_Forms_AreParsed(string url, string host, int port, string? user, string? password, int database, bool tls)
    {
        Assert.True(RedisAddress.TryParse(url, out var address, out var error), error);

        Assert.Equal(new RedisAddress(host, port, user, password, database, tls), address);
    }

    [Fact]
    public void RedisAddress_Text_NeverShowsThePassword()
    {
        Assert.True(RedisAddress.TryParse("redis://app:hunter2@db:6379/1", out var address, out _));

        Assert.Equal("redis://db:6379/1", address.ToString());
        Assert.Equal("hunter2", address.Options().Password);
    }

    [Theory]
    [InlineData("redis_url = \"localhost:6379\"", "cluster.redis_url")]
    [InlineData("redis_url = \"http://localhost:6379\"", "cluster.redis_url")]
    [InlineData("redis_url = \"redis://localhost/16\"", "cluster.redis_url")]
    [InlineData("redis_url = \"redis://localhost/?db=1\"", "cluster.redis_url")]
    [InlineData("replica = \"gw 1\"", "cluster.replica")]
    [InlineData("heartbeat = \"0s\"", "cluster.heartbeat")]
    [InlineData("heartbeat = \"often\"", "cluster.heartbeat")]
    [InlineData("member_ttl = \"1s\"", "cluster.member_ttl")]
    [InlineData("member_ttl = \"1h\"", "cluster.member_ttl")]
    [InlineData("store_down = \"open\"", "cluster.store_down")]
    [InlineData("redis = \"redis://localhost\"", "cluster.redis")]
    public void Cluster_InvalidValue_IsRejectedWithItsKeyAndLine(string line, string key)
    {
        var error = TestConfig.SingleError("# shared store\n[cluster]\n" + line + "\n");

        Assert.Equal(key, error.Key);
        Assert.Equal(3, error.Line);
    }

    [Fact]
    public void RedisUrl_Rejected_IsQuotedWithoutItsPassword()
    {
        var error = TestConfig.SingleError("[cluster]\nredis_url = \"http://u:hunter2@db:6379\"\n");

        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        Assert.Contains("***@db:6379", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Digest_IgnoresWhatDiffersByReplica_AndSeesThePolicy()
    {
        const string Policy = """
            [[tenants]]
            name = "acme"
            rpm = 30
            """;
        var one = TestConfig.Valid("""
            [server]
            listen = "127.0.0.1:8080"

            [ledger]
            path = "one.db"

            [cluster]
            redis_url = "redis://localhost"
            replica = "one"

            """ + Policy).Digest;
        var two = TestConfig.Valid("""
            # replica two
            [server]
            listen = "127.0.0.1:8081"

            [ledger]
            path = "two.db"

            [cluster]
            redis_url = "redis://localhost"
            replica = "two"

            """ + Policy).Digest;
        var other = TestConfig.Valid("""
            [cluster]
            redis_url = "redis://localhost"
            replica = "one"

            """ + Policy.Replace("30", "60", StringComparison.Ordinal)).Digest;

        Assert.Matches("^[0-9a-f]{12}$", one);
        Assert.Equal(one, two);
        Assert.NotEqual(one, other);
    }
}
