using StackExchange.Redis;

namespace AotProxy.Cluster;

// The layout of what replicas share in Redis, all under one prefix so that a store can be
// shared with other programs and inspected with `redis-cli --scan --pattern 'aotproxy:*'`.
//   aotproxy:members          set of replica names that wrote a record (stale names pruned on read)
//   aotproxy:member:{name}    hash: the replica's record (ClusterMember), expires member_ttl after its last beat
//   aotproxy:rpm:{tenant}     hash: Redis second -> requests decided in it, the last 61 (SharedRequestWindow)
//   aotproxy:epoch            string: the store's life, set by the first replica that finds it missing (StoreResync)
//   aotproxy:seeded:{epoch}   set of replica names that seeded what they know into this epoch (StoreResync)
//   aotproxy:tenant:{tenant}  hash: the tenant's fleet-wide budget spend (budget_spent, month_spent, ...)
internal static class ClusterKeys
{
    public static readonly RedisKey Members = "aotproxy:members";

    public static RedisKey Member(string name) => "aotproxy:member:" + name;

    public static RedisKey Requests(string tenant) => "aotproxy:rpm:" + tenant;

    public static readonly RedisKey Epoch = "aotproxy:epoch";

    public static RedisKey Seeded(string epoch) => "aotproxy:seeded:" + epoch;

    public static RedisKey Tenant(string tenant) => "aotproxy:tenant:" + tenant;
}
