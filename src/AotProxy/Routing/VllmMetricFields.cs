namespace AotProxy.Routing;

// Which of VllmMetrics' fields the scrape carried. A field a worker does not expose (V0 has no
// prefix-cache counters in some versions) is absent, never a silent zero.
[Flags]
internal enum VllmMetricFields : byte
{
    None = 0,
    Running = 1,
    Waiting = 2,
    KvCacheUsage = 4,
    PrefixCacheQueries = 8,
    PrefixCacheHits = 16,
    NumGpuBlocks = 32,
    BlockSize = 64,
    Preemptions = 128,

    // What a load-aware router needs; the prefix-cache counters and the cache size are a bonus.
    Load = Running | Waiting | KvCacheUsage,
}
