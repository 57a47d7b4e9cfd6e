using StackExchange.Redis;

namespace AotProxy.Cluster;

// The layout of what replicas share in Redis, all under one prefix so that a store can be
// shared with other programs and inspected with `redis-cli --scan --pattern 'aotproxy:*'`.
//   aotproxy:members          set of replica names that wrote a record (stale names pruned on read)
//   aotproxy:member:{name}    hash: the replica's record (ClusterMember), expires member_ttl after its last beat
//   aotproxy:rpm:{tenant}     hash: Redis second -> requests decided in it, the last 61 (SharedTenantLimits)
//   aotproxy:tpm:{tenant}     hash: Redis second -> tokens reserved then settled in it, the last 61
//   aotproxy:tenant:{tenant}  hash: in_flight, budget_spent, budget_reserved, usd_spent_nanos, usd_reserved_nanos, month, month_spent, month_usd_spent_nanos
//   aotproxy:res:{name}       hash: `t|{tenant}|{field}` -> the replica's part of that reserved total, subtracted when it is reaped
//   aotproxy:reap:{name}      string: the one reaper of a dead replica (SET NX PX)
internal static class ClusterKeys
{
    public static readonly RedisKey Members = "aotproxy:members";

    public static RedisKey Member(string name) => "aotproxy:member:" + name;

    public static RedisKey Requests(string tenant) => "aotproxy:rpm:" + tenant;

    public static RedisKey Tokens(string tenant) => "aotproxy:tpm:" + tenant;

    public static RedisKey Tenant(string tenant) => "aotproxy:tenant:" + tenant;

    public static RedisKey Reservations(string replica) => "aotproxy:res:" + replica;

    public static RedisKey Reaping(string replica) => "aotproxy:reap:" + replica;
}
