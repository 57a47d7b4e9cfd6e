using StackExchange.Redis;

namespace AotProxy.Cluster;

// The layout of what replicas share in Redis, all under one prefix so that a store can be
// shared with other programs and inspected with `redis-cli --scan --pattern 'aotproxy:*'`.
// The one place that names a key (docs/CLUSTER.md, "Key layout", lists the same).
//   aotproxy:members          set of replica names that wrote a record (stale names pruned on read)
//   aotproxy:member:{name}    hash: the replica's record (ClusterMember), expires member_ttl after its last beat
//   aotproxy:rpm:{tenant}     hash: Redis second -> requests decided (or leased, TenantLease) in it, the last 61 (SharedTenantLimits)
//   aotproxy:tpm:{tenant}     hash: Redis second -> tokens reserved then settled in it, the last 61
//   aotproxy:tenant:{tenant}  hash: in_flight, budget_spent, budget_reserved, usd_spent_nanos, usd_reserved_nanos, month (yyyy-MM), month_spent, month_usd_spent_nanos
//   aotproxy:res:{name}       hash: `kind|name|field` -> the replica's part of the total that hash field holds
//                             (t|acme|in_flight, t|acme|budget_reserved, w|gpu-0|running); subtracted when
//                             it is reaped (ReplicaReaper, which maps t to aotproxy:tenant:, w to aotproxy:worker:)
//   aotproxy:epoch            string: the store's life, set by the first replica that finds it missing (StoreResync)
//   aotproxy:seeded:{epoch}   set of replica names that seeded what they know into this epoch (StoreResync)
//   aotproxy:seeded-ledgers:{epoch}  set of ledger files (ledger_id) whose spend is in this epoch's budgets (StoreResync, [store])
//   aotproxy:worker:{worker}  hash: running (requests on it over all replicas), drained (1 or 0),
//                             breaker_until (ms, Redis's clock: a replica's breaker opened until then),
//                             wait_until (ms, Redis's clock: a replica may wait for a slot until then) (SharedWorkerSlots)
//   aotproxy:release:{worker} channel: a slot of the worker came free while a replica may wait for one
//                             (wait_until); the message is its running count
//   aotproxy:vtc:{model}      hash: tenant -> its fair-share counter, micro-tokens per weight (SharedFairShare)
//   aotproxy:backlog:{model}  hash: replica|tenant -> requests waiting there, replica| -> its last flush (ms, Redis's clock)
//   aotproxy:events           channel: drain:{worker}, undrain:{worker}, breaker:{worker}: re-read at once
//                             (each heartbeat does anyway)
//   aotproxy:pwant:{worker}   sorted set: a request refused a slot of the worker whose class may preempt
//                             (member `{replica}|{n}`, one per waiting request) -> priority x 2^42 + until (ms,
//                             Redis's clock, one heartbeat on); a grant leaves a free slot for each live one
//                             more important than its request; on aotproxy:release:{worker}: `p|priority|member`
//   aotproxy:pclaim:{member}  string: the replica that preempts a request for that want (SET NX: one
//                             preemption per waiting request), for 120 s (SharedWorkerSlots)
//   aotproxy:queue:{model}    hash: replica -> its waiters per queue level and grant rate, `millirate|level:n,...` (SharedFairShare, FleetQueues)
internal static class ClusterKeys
{
    public const string ReleasePrefix = "aotproxy:release:";

    public static readonly RedisKey Members = "aotproxy:members";

    public static readonly RedisChannel Releases = RedisChannel.Pattern(ReleasePrefix + "*");

    public const string EventsName = "aotproxy:events";

    public static readonly RedisChannel Events = RedisChannel.Literal(EventsName);

    public static RedisKey Member(string name) => "aotproxy:member:" + name;

    public static RedisKey Requests(string tenant) => "aotproxy:rpm:" + tenant;

    public static RedisKey Tokens(string tenant) => "aotproxy:tpm:" + tenant;

    public static RedisKey Tenant(string tenant) => "aotproxy:tenant:" + tenant;

    public static RedisKey Reservations(string replica) => "aotproxy:res:" + replica;

    public static readonly RedisKey Epoch = "aotproxy:epoch";

    public static RedisKey Seeded(string epoch) => "aotproxy:seeded:" + epoch;

    public static RedisKey SeededLedgers(string epoch) => "aotproxy:seeded-ledgers:" + epoch;

    public static RedisKey Worker(string worker) => "aotproxy:worker:" + worker;

    public static RedisKey Vtc(string model) => "aotproxy:vtc:" + model;

    public static RedisKey Backlog(string model) => "aotproxy:backlog:" + model;

    public static RedisKey Queue(string model) => "aotproxy:queue:" + model;

    // The field of aotproxy:res:{replica} that holds this replica's part of the worker's running.
    public static RedisValue WorkerRunning(string worker) => "w|" + worker + "|running";

    public static RedisValue Release(string worker) => ReleasePrefix + worker;

    public static RedisKey PriorityWants(string worker) => "aotproxy:pwant:" + worker;

    public const string ClaimPrefix = "aotproxy:pclaim:";

    public static RedisKey Claim(string member) => ClaimPrefix + member;
}
