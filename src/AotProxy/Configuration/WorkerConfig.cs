using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[workers]] entry.
internal sealed record WorkerConfig
{
    public string Name { get; init; } = "";

    public string Url { get; init; } = "";

    // null (omitted) or empty: discovered from the worker's GET /v1/models.
    public IReadOnlyList<string>? Models { get; init; }

    // 32: a common vLLM --max-num-seqs for an 8B model on one GPU is 32..256; start low.
    public int MaxConcurrency { get; init; } = 32;

    public int Weight { get; init; } = 1;

    public string ApiKey { get; init; } = "";

    // The upstream's own limits (hosted OpenAI-compatible APIs); 0: none, as with vLLM. The
    // gateway paces requests to stay below them ([pacing]).
    public long Rpm { get; init; }

    public long Tpm { get; init; }

    // "": [pacing] max_wait.
    public string PacingMaxWait { get; init; } = "";

    // The worker's KV capacity in tokens when its /metrics has no cache_config_info; 0: from the
    // metric (neither: 131072, KvCacheModel.DefaultCapacityTokens).
    public long KvCacheTokens { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
