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
    // P0 -> buckets 0-1, ..., P4 (and any lower priority) -> 8-9 with ten buckets; scaled to others.
    public static (int First, int Last) BucketsOf(int priority, int bucketCount)
    {
        var level = Math.Min(priority, 4);
        var first = level * bucketCount / 5;
        var last = Math.Max(first, ((level + 1) * bucketCount / 5) - 1);
        return (first, last);
    }
}
