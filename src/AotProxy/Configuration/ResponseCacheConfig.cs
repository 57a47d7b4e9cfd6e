using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [response_cache]: the exact response cache's bounds (Caching/). Nothing is cached unless a
// tenant or a model opts in (response_cache = true).
internal sealed record ResponseCacheConfig
{
    public bool Enabled { get; init; } = true;

    // 64 MiB: ~30,000 typical chat answers (perf/RESULTS.md, "Issue 21 (response cache)").
    public long MaxBytes { get; init; } = ResponseCacheModel.DefaultMaxBytes;

    // How long an answer is served from the cache after it was stored.
    public string Ttl { get; init; } = "10m";

    // A hit is charged to its tenant's budgets as the original answer's usage; false: free.
    public bool ChargeHits { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
