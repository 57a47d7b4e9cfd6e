using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[classes]] entry: a service tier.
internal sealed record ClassConfig
{
    public string Name { get; init; } = "";

    // 0..9, 0 is the most important: ten levels cover P0..P4 and enterprise/premium/free with room.
    public int Priority { get; init; }

    public int Weight { get; init; } = 1;

    public string MaxQueueWait { get; init; } = "30s";

    public double MaxUtilization { get; init; } = 1.0;

    // bucket policy: [first, last] bucket of the class. Empty: from the priority, as the source
    // design maps P0..P4 onto ten buckets (P0 -> 0-1, P1 -> 2-3, ..., P4 and below -> 8-9).
    public IReadOnlyList<int> Buckets { get; init; } = [];

    // bucket policy: "strict" uses only its buckets' guaranteed slots; "atleast" may also take
    // the idle slots of any lower-priority bucket.
    public string Mode { get; init; } = ClassModes.AtLeast;

    // The time to first token the class is promised at p95: exported as
    // llm_gateway_class_ttft_sla_seconds for deploy/prometheus/rules.yml to alert on. Empty: none.
    public string TtftSla { get; init; } = "";

    // Protection when the fleet degrades ([scheduler] protection_window): the fleet error rate
    // (0..1) and the multiple of the learned baseline TTFT this class tolerates; 0: none.
    public double MaxErrorRate { get; init; }

    public double TtftTolerance { get; init; }

    // Prefix-cache isolation for every tenant of the class that does not set its own cache_salt.
    public bool CacheSalt { get; init; }

    // The exact response cache (Caching/) keys this class's entries by class, not tenant: its
    // tenants share answers to identical requests.
    public bool SharedResponseCache { get; init; }

    // Preemption before the first byte: an admitted request of this class that has sent its client
    // nothing may be cancelled upstream and requeued when a more important class waits.
    public bool Preemptible { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
