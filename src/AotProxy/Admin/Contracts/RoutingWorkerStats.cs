namespace AotProxy.Admin.Contracts;

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
    bool Warming);
