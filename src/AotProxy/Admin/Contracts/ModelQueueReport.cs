namespace AotProxy.Admin.Contracts;

// One model pool's admission state. Levels are the bucket policy's buckets, the priority
// policy's priorities, or fairshare's single level 0; only levels that were ever used appear.
// GrantRate: grants per second over the last 10 s (with [cluster], the fleet's: Cluster/FleetQueues), what a 503's x-gateway-grant-rate and a queued
// stream's eta_ms are computed from.
internal sealed record ModelQueueReport(
    string Model,
    int Capacity,
    int InUse,
    int Waiting,
    double GrantRate,
    double AgingIntervalSeconds,
    QueueLevelReport[] Levels,
    AccountReport[] Classes,
    AccountReport[] Tenants);
