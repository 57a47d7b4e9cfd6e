namespace AotProxy.Admin.Contracts;

// One model pool's admission state. Levels are the bucket policy's buckets, the priority
// policy's priorities, or fairshare's single level 0; only levels that were ever used appear.
internal sealed record ModelQueueReport(
    string Model,
    int Capacity,
    int InUse,
    int Waiting,
    double GrantsPerSecond,
    double AgingIntervalSeconds,
    QueueLevelReport[] Levels,
    AccountReport[] Classes,
    AccountReport[] Tenants);
