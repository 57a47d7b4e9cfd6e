using StackExchange.Redis;

namespace AotProxy.Cluster;

// A tenant's RPM fleet-wide (docs/CLUSTER.md, "Tenant RPM and TPM"): one script per decision
// that reads Redis's clock, counts the tenant's requests in per-second bins and takes one if the
// window has room. The window is 61 bins, (now - 61, now]: a request decided in second s counts
// until second s + 61, so any 60 s of real time, which touches at most 61 whole seconds, holds
// at most `rpm` decisions. A replica sends a request after its decision, which adds at most one
// request per replica to a window of send times (docs/CLUSTER.md). The replicas' clocks play no
// part. One round trip per decision; the give-back of a request that never went upstream is
// fire-and-forget. connection: the replica's one connection (ClusterMembership's), null until it
// is made.
internal sealed class SharedRequestWindow(Func<IConnectionMultiplexer?> connection)
{
    // KEYS[1] the tenant's bins; ARGV[1] the limit. Returns {1, second} when taken, else
    // {0, seconds until the oldest counted bin leaves the window}. Bins that left the window are
    // deleted as they are met (at most 62 fields, so the walk is short).
    private const string TakeScript = """
        local now = tonumber(redis.call('TIME')[1])
        local limit = tonumber(ARGV[1])
        local bins = redis.call('HGETALL', KEYS[1])
        local total = 0
        local oldest = now
        for i = 1, #bins, 2 do
          local second = tonumber(bins[i])
          if second <= now - 61 then
            redis.call('HDEL', KEYS[1], bins[i])
          else
            local count = tonumber(bins[i + 1])
            total = total + count
            if count > 0 and second < oldest then oldest = second end
          end
        end
        if total + 1 > limit then
          return {0, oldest + 61 - now}
        end
        redis.call('HINCRBY', KEYS[1], now, 1)
        redis.call('PEXPIRE', KEYS[1], 62000)
        return {1, now}
        """;

    // KEYS[1] the tenant's bins; ARGV[1] the second the request was taken in. A bin that already
    // left the window (or a store restarted empty) has nothing to give back.
    private const string GiveBackScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
          redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
        end
        return 0
        """;

    // StoreDown when the store cannot answer (not connected yet, down, timed out): the caller
    // decides with its own window alone.
    public async Task<SharedTake> TryTakeAsync(string tenant, long rpm)
    {
        if (connection() is not { IsConnected: true } redis)
        {
            return SharedTake.StoreDown;
        }

        try
        {
            var result = await redis.GetDatabase().ScriptEvaluateAsync(TakeScript, [ClusterKeys.Requests(tenant)], [rpm]).ConfigureAwait(false);
            var answer = (long[])result!;
            return answer[0] == 1
                ? new SharedTake(SharedTakeOutcome.Taken, answer[1], TimeSpan.Zero)
                : new SharedTake(SharedTakeOutcome.Refused, 0, TimeSpan.FromSeconds(answer[1]));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return SharedTake.StoreDown;
        }
    }

    // A request taken in `second` that never went upstream: its place goes back to the tenant.
    // Lost if the store is unreachable: the place then stays counted until its bin leaves the
    // window (at most 61 s), never counted twice.
    public void GiveBack(string tenant, long second)
    {
        if (connection() is { IsConnected: true } redis)
        {
            _ = redis.GetDatabase().ScriptEvaluateAsync(GiveBackScript, [ClusterKeys.Requests(tenant)], [second], CommandFlags.FireAndForget);
        }
    }
}
