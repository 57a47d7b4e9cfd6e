using StackExchange.Redis;

namespace AotProxy.Cluster;

// A dead replica's reservations go back (docs/CLUSTER.md, "Reaping a dead replica"). Every total
// that gates a decision is a sum of per-replica parts, each kept as a field `kind|name|field` of
// `aotproxy:res:{replica}`: kind names the hash (w: aotproxy:worker:{name}, t:
// aotproxy:tenant:{name}), field its field. One script subtracts each part from the total it
// names, deletes the reservations and the name from the members, atomically, so two reapers
// subtract once; it does nothing while the replica's record exists (it beat again meanwhile).
// Generic on purpose: worker slots and tenant reservations are reaped by the same script.
internal static class ReplicaReaper
{
    // KEYS[1] the dead replica's record, KEYS[2] its reservations, KEYS[3] the members set;
    // ARGV[1] its name. The hashes a part names are not in KEYS (one Redis, not Redis Cluster).
    // A total never goes below 0 (after an empty restart it may hold less than the parts).
    // Returns the parts subtracted, or -1 when the replica is alive.
    private const string ReapScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then
          return -1
        end
        local prefixes = {w = 'aotproxy:worker:', t = 'aotproxy:tenant:'}
        local parts = redis.call('HGETALL', KEYS[2])
        for i = 1, #parts, 2 do
          local kind, name, field = string.match(parts[i], '^([^|]+)|(.+)|([^|]+)$')
          local prefix = kind and prefixes[kind]
          local amount = tonumber(parts[i + 1])
          if prefix and amount then
            local left = redis.call('HINCRBY', prefix .. name, field, -amount)
            if left < 0 then
              redis.call('HSET', prefix .. name, field, 0)
              left = 0
            end
            if kind == 'w' and field == 'running' then
              redis.call('PUBLISH', 'aotproxy:release:' .. name, left)
            end
          end
        end
        redis.call('DEL', KEYS[2])
        redis.call('SREM', KEYS[3], ARGV[1])
        return #parts / 2
        """;

    // The parts given back (0: nothing was reserved, or another reaper was first), -1 when the
    // replica's record exists. A worker's slots that come back are published on its release
    // channel, so waiters on every replica wake at once.
    public static async Task<long> ReapAsync(IDatabaseAsync db, string dead)
    {
        ArgumentNullException.ThrowIfNull(db);
        var result = await db.ScriptEvaluateAsync(ReapScript, [ClusterKeys.Member(dead), ClusterKeys.Reservations(dead), ClusterKeys.Members], [dead]).ConfigureAwait(false);
        return (long)result;
    }
}
