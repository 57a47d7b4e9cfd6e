using StackExchange.Redis;

namespace AotProxy.Cluster;

// The layout of what replicas share in Redis, all under one prefix so that a store can be
// shared with other programs and inspected with `redis-cli --scan --pattern 'aotproxy:*'`.
// The one place that names a key (docs/CLUSTER.md, "Key layout", lists the same).
//   aotproxy:members          set of replica names that wrote a record (stale names pruned on read)
//   aotproxy:member:{name}    hash: the replica's record (ClusterMember), expires member_ttl after its last beat
//   aotproxy:rpm:{tenant}     hash: Redis second -> requests decided in it, the last 61 (SharedTenantLimits)
//   aotproxy:tpm:{tenant}     hash: Redis second -> tokens reserved then settled in it, the last 61
//   aotproxy:tenant:{tenant}  hash: in_flight, budget_spent, budget_reserved, usd_spent_nanos, usd_reserved_nanos, month (yyyy-MM), month_spent, month_usd_spent_nanos
//   aotproxy:res:{name}       hash: `t|{tenant}|{field}` -> the replica's part of that reserved total, subtracted when it is reaped
//   aotproxy:reap:{name}      string: the one reaper of a dead replica (SET NX PX)
//   aotproxy:epoch            string: the store's life, set by the first replica that finds it missing (StoreResync)
//   aotproxy:seeded:{epoch}   set of replica names that seeded what they know into this epoch (StoreResync)
internal static class ClusterKeys
{
    public static readonly RedisKey Members = "aotproxy:members";

    // The prefix of a tenant's totals, which the reap script completes with the tenant a part names.
    public const string TenantPrefix = "aotproxy:tenant:";

    public static RedisKey Member(string name) => "aotproxy:member:" + name;

    public static RedisKey Requests(string tenant) => "aotproxy:rpm:" + tenant;

    public static RedisKey Tokens(string tenant) => "aotproxy:tpm:" + tenant;

    public static RedisKey Tenant(string tenant) => TenantPrefix + tenant;

    public static RedisKey Reservations(string replica) => "aotproxy:res:" + replica;

    public static RedisKey Reaping(string replica) => "aotproxy:reap:" + replica;

    public static readonly RedisKey Epoch = "aotproxy:epoch";

    public static RedisKey Seeded(string epoch) => "aotproxy:seeded:" + epoch;
}
