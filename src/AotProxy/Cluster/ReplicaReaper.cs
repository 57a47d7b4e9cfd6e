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
    // ARGV[1] its name, ARGV[2] 'own' for a replica's own parts left by its previous run under the
    // same name (its old record may not have expired yet: no check, and the name stays listed).
    // The hashes a part names are not in KEYS (one Redis, not Redis Cluster). A total never goes
    // below 0 (after an empty restart it may hold less than the parts). Returns the parts
    // subtracted, or -1 when the replica is alive.
    private const string ReapScript = """
        local own = ARGV[2] == 'own'
        if not own and redis.call('EXISTS', KEYS[1]) == 1 then
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
        if not own then redis.call('SREM', KEYS[3], ARGV[1]) end
        return #parts / 2
        """;

    // The parts given back (0: nothing was reserved, or another reaper was first), -1 when the
    // replica's record exists. A worker's slots that come back are published on its release
    // channel, so waiters on every replica wake at once.
    public static Task<long> ReapAsync(IDatabaseAsync db, string dead) => RunAsync(db, dead, "dead");

    // A replica restarted under its name before its old record expired is never found dead, so
    // its previous run's parts would count for ever: it gives them back itself on its first beat,
    // before any request of this run can reserve (ClusterMembership shares its connection only
    // then).
    public static Task<long> ReleasePreviousLifeAsync(IDatabaseAsync db, string name) => RunAsync(db, name, "own");

    private static async Task<long> RunAsync(IDatabaseAsync db, string name, string mode)
    {
        ArgumentNullException.ThrowIfNull(db);
        var result = await db.ScriptEvaluateAsync(ReapScript, [ClusterKeys.Member(name), ClusterKeys.Reservations(name), ClusterKeys.Members], [name, mode]).ConfigureAwait(false);
        return (long)result;
    }
}
