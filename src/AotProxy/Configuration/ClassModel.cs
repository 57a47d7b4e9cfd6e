namespace AotProxy.Configuration;

internal sealed record ClassModel(
    string Name,
    int Priority,           // 0 is the most important
    int Weight,
    TimeSpan MaxQueueWait,
    double MaxUtilization,
    int FirstBucket,        // bucket policy: the class's bucket range, inside 0..bucket_count-1
    int LastBucket,
    bool Strict)            // bucket policy: only its own buckets' guaranteed slots
{
    // [[classes]] ttft_sla: the promised p95 time to first token, or null (no SLA, no alert).
    public TimeSpan? TtftSla { get; init; }

    // [[classes]] max_error_rate and ttft_tolerance: what the class tolerates of a degrading fleet
    // before looser classes are shed to protect it (ProtectionModel); 0: none.
    public double MaxErrorRate { get; init; }

    public double TtftTolerance { get; init; }

    // [[classes]] cache_salt: its tenants without their own cache_salt get a TenantCacheSalt.
    public bool CacheSalt { get; init; }

    // [[classes]] shared_response_cache: response cache entries are the class's, not each tenant's.
    public bool SharedResponseCache { get; init; }

    // [[classes]] preemptible: its admitted requests may give their slot to a more important
    // class's waiter before their first byte (Admission/PreemptionTicket), and wait again.
    public bool Preemptible { get; init; }

    // The class tenants get when the file declares no [[classes]] (SPEC: Config).
    public const string DefaultName = "default";

    // Priorities run from 0 (the most important) to this.
    public const int MaxPriority = 9;

    // With the default ten buckets: what a valid snapshot never needs, but a lookup can fall back on.
    public static ClassModel Default { get; } = Implicit(bucketCount: 10);

    // The implicit class of a file without [[classes]]: priority 0, so its buckets are P0's.
    public static ClassModel Implicit(int bucketCount)
    {
        var (first, last) = BucketsOf(0, bucketCount);
        return new(DefaultName, Priority: 0, Weight: 1, MaxQueueWait: TimeSpan.FromSeconds(30), MaxUtilization: 1.0, first, last, Strict: false);
    }

    // P0 -> buckets 0-1, ..., P4 (and any lower priority) -> 8-9 with ten buckets; scaled to others.
    public static (int First, int Last) BucketsOf(int priority, int bucketCount)
    {
        var level = Math.Min(priority, 4);
        var first = level * bucketCount / 5;
        var last = Math.Max(first, ((level + 1) * bucketCount / 5) - 1);
        return (first, last);
    }
}
