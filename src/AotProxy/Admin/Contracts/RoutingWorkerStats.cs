namespace AotProxy.Admin.Contracts;

// Per worker: its decisions, and what p2c_kv's estimate reads (issue 19): the cache model's
// capacity, what it believes resident and its correction (0.1..1); the token load; the measured
// prefill rate (the 20,000 default until measured); and the extra backlog it may carry over the
// least backlogged worker before a hit of its mean size no longer pays.
// PushBacks: its 503/429 answers ("full", retried elsewhere); Warming: joined or recovered and not
// yet through the gateway's warm-up request, so it takes no traffic.
// Adapters: vllm:lora_requests_info's running and waiting adapters as last scraped, and max_lora
// (null: the worker reports no LoRA gauge). SessionPicks: p2c_kv picks a conversation kept here.
internal sealed record RoutingWorkerStats(
    string Name,
    long Decisions,
    Dictionary<string, long> ByStrategy,
    string[] AdaptersRunning,
    string[] AdaptersWaiting,
    int? MaxLora,
    long SessionPicks,
    long PushBacks,
    bool Warming,
    long CacheCapacityTokens,
    long CacheTokens,
    double CacheCorrection,
    long PrefillBacklogTokens,
    int Decoding,
    double PrefillTokensPerSecond,
    bool PrefillRateMeasured,
    long StickyThresholdTokens);
