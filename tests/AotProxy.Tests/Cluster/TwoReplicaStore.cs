using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// The fixture of the tests that play two replicas on one store: a real redis-server of the test's
// own (empty, on a free loopback port) and two connections to it with the gateway's options, one
// a replica. Server stops and restarts the store; the connections reconnect as the gateway's do.
internal sealed class TwoReplicaStore(RedisServer server, ConnectionMultiplexer one, ConnectionMultiplexer two) : IAsyncDisposable
{
    public RedisServer Server { get; } = server;

    public ConnectionMultiplexer One { get; } = one;

    public ConnectionMultiplexer Two { get; } = two;

    public static async Task<TwoReplicaStore> StartAsync()
    {
        var server = await RedisServer.StartAsync();
        return new TwoReplicaStore(server, await RedisConnections.ConnectAsync(server), await RedisConnections.ConnectAsync(server));
    }

    public async ValueTask DisposeAsync()
    {
        await One.DisposeAsync();
        await Two.DisposeAsync();
        await Server.DisposeAsync();
    }
}
