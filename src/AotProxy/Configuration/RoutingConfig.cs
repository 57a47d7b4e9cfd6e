using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [routing]
internal sealed record RoutingConfig
{
    public string Strategy { get; init; } = RoutingStrategyNames.P2cKv;

    // 500 ms: vLLM's gauges move per scheduler step; scraping faster costs the worker more than it helps.
    public string MetricsInterval { get; init; } = "500ms";

    // "": 80% of metrics_interval, so that one slow scrape never overlaps the next.
    public string MetricsTimeout { get; init; } = "";

    // p2c_kv's score weights (defaults from SGLang's and llm-d's seed practice): a queued request
    // costs twice a running one, a full KV cache costs as much as two queued requests.
    public double WeightWaiting { get; init; } = 1.0;

    public double WeightRunning { get; init; } = 0.5;

    public double WeightKv { get; init; } = 2.0;

    public double WeightLatency { get; init; } = 0.3;

    public double WeightError { get; init; } = 5.0;

    // Accepted for old configs, unused since issue 19: p2c_kv weighs a worker's cached tokens of the
    // request against its prefill backlog at its measured rate instead of a fixed bonus.
    public double PrefixBonus { get; init; } = 2.0;

    // The longest a prompt chunk the gateway sent counts as cached on its worker. Only an upper
    // bound: the worker's KV capacity (KvCacheModel) decides first; 10 minutes is long enough not to.
    public string PrefixTtl { get; init; } = "10m";

    // Affinity yields to load when the affine worker carries this many more requests (running
    // plus waiting) than the least-loaded one AND this many times as many.
    public double AffinityMaxGap { get; init; } = 4;

    public double AffinityMaxRatio { get; init; } = 1.5;

    // consistent_hash: the key is this header, else the body's `user`, else the prompt prefix.
    public string HashHeader { get; init; } = "x-session-id";

    // p2c_kv: a conversation (hash_header, else `user`) stays on its worker while that worker is
    // not saturated, where its growing prompt is cached.
    public bool SessionAffinity { get; init; } = true;

    public int VirtualNodes { get; init; } = 150;

    // Bounded load: a worker above (1 + hash_load_factor) x the mean in-flight is skipped.
    public double HashLoadFactor { get; init; } = 0.25;

    // adaptive: share of requests sent to a random worker to keep the latency estimates fresh.
    public double Epsilon { get; init; } = 0.1;

    // Weight of a new sample in the latency averages (TTFT, time per output token).
    public double LearningRate { get; init; } = 0.2;

    // A worker that joins (config, or recovery of its health or breaker) answers one real
    // completion from the gateway before it takes traffic: a cold worker's first request is slow.
    public bool Warmup { get; init; } = true;

    // Served models model "auto" prefers, first listed first, among those that fit the request.
    public IReadOnlyList<string> AutoPreference { get; init; } = [];

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
