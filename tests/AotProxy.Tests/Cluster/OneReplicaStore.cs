using AotProxy.Cluster;
using AotProxy.Gateway;
using AotProxy.Limits;
using AotProxy.Tests.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// The fixture of the tests that play one replica against a store they also inspect: a real
// redis-server of the test's own (empty, on a free loopback port) and one connection to it with
// the gateway's options. Server stops and restarts the store; the connection reconnects as the
// gateway's does. StartMember runs a replica's membership (its own connection) on it.
internal sealed class OneReplicaStore(RedisServer server, ConnectionMultiplexer connection) : IAsyncDisposable
{
    public RedisServer Server { get; } = server;

    public ConnectionMultiplexer Connection { get; } = connection;

    public IDatabase Db => Connection.GetDatabase();

    public static async Task<OneReplicaStore> StartAsync()
    {
        var server = await RedisServer.StartAsync();
        return new OneReplicaStore(server, await RedisConnections.ConnectAsync(server));
    }

    // Replica `name`'s heartbeat on this store, started; policy: TOML appended to the config.
    // resync: with StoreDownPolicy and StoreResync wired as GatewayHost wires them (no tenants).
    public ClusterMembership StartMember(string name, TimeSpan heartbeat, TimeSpan memberTtl, string policy = "", long inFlight = 0, bool resync = false)
    {
        var snapshot = TestConfig.Valid($"""
            [cluster]
            redis_url = "{Server.Url}"
            replica = "{name}"
            heartbeat = "{heartbeat.TotalMilliseconds}ms"
            member_ttl = "{memberTtl.TotalMilliseconds}ms"

            {policy}
            """);
        var membership = new ClusterMembership(snapshot.Cluster, () => snapshot, () => inFlight, TimeProvider.System, NullLogger.Instance);
        if (resync)
        {
            var telemetry = new ClusterTelemetry(new GatewayTelemetry().Registry, () => membership.Current);
            var storeDown = new StoreDownPolicy(snapshot.Cluster, () => membership.Current, telemetry, TimeProvider.System, NullLogger.Instance);
            membership.Resync = new StoreResync(() => membership.Name, new TenantLimits(TimeProvider.System), storeDown, telemetry, NullLogger.Instance);
        }

        membership.Start(dataPort: 0);
        return membership;
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        await Server.DisposeAsync();
    }
}
