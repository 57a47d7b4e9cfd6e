using System.Collections.Immutable;

namespace AotProxy.Configuration;

internal sealed record WorkerModel(
    string Name,
    Uri Url,                        // base URL, always ending in "/"
    ImmutableArray<string> Models,  // empty: discovered from GET /v1/models
    int MaxConcurrency,
    int Weight,
    string ApiKey,                  // "": no Authorization header upstream
    PacingModel? Pacing = null,     // null: unpaced (no rpm or tpm)
    long KvCacheTokens = 0)         // 0: from the worker's cache_config_info metric
{
    // Worker state survives a reload only when this identity is unchanged (STYLE.md).
    public bool SameIdentity(WorkerModel other) =>
        Name == other.Name && Url == other.Url;
}
