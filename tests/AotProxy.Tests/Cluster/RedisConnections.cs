using AotProxy.Cluster;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A replica's connection to a test's redis-server, with the options the gateway uses
// (RedisAddress.Options: no abort on connect failure, short timeouts).
internal static class RedisConnections
{
    public static async Task<ConnectionMultiplexer> ConnectAsync(RedisServer redis)
    {
        Assert.True(RedisAddress.TryParse(redis.Url, out var address, out var error), error);
        return await ConnectionMultiplexer.ConnectAsync(address.Options());
    }
}
