using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [scheduler]
internal sealed record SchedulerConfig
{
    public string Policy { get; init; } = SchedulerPolicyNames.FairShare;

    // Waiters per queue (rounded up to a power of two). 1,024 requests waiting for one model is
    // minutes of backlog on any fleet; beyond that a client is better told to retry later.
    public int QueueCapacity { get; init; } = 1024;

    // fairshare (VTC, OSDI'24): what one prompt and one completion token cost a tenant's counter.
    // A decode token costs about twice a prefill token in GPU time, hence 1 and 2.
    public double InputWeight { get; init; } = 1.0;

    public double OutputWeight { get; init; } = 2.0;

    // priority: a waiter rises one level per aging_factor x the recent median request duration,
    // so a P4 request reaches P0 after 4 x 2 = 8 service times, inside the 10x starvation bound.
    public double AgingFactor { get; init; } = 2.0;

    // bucket: how many capacity buckets, and each one's guaranteed share of the slots. Empty
    // shares: they decay geometrically from bucket 0 (each bucket 0.75 x the one before).
    public int BucketCount { get; init; } = 10;

    public IReadOnlyList<double> BucketShares { get; init; } = [];

    // Off by default: max_concurrency is what the operator measured; adapting it is opt-in.
    public bool AdaptiveSlots { get; init; }

    // 0.5: halving is as far as a queue on the worker should push its slots; below that the
    // worker is sick, and health checks and breakers, not admission, should take it out.
    public double AdaptiveMin { get; init; } = 0.5;

    // 1.5: a worker idle with KV headroom may take half again its configured concurrency.
    public double AdaptiveMax { get; init; } = 1.5;

    // Off by default: a vLLM worker started without --scheduling-policy priority may refuse a
    // request whose priority is not 0 (V0 engines answer 400), so sending it is the operator's call.
    public bool EnginePriority { get; init; }

    // Graduated holdback, off by default (today's behaviour: only max_utilization): the share of
    // the fleet the least important band leaves free; the bands between scale linearly by rank.
    public double Holdback { get; init; }

    // Per-class protection ([[classes]] max_error_rate, ttft_tolerance): the window of the fleet's
    // error rate and TTFT it compares. 30 s: long enough for a few hundred outcomes on a busy
    // fleet, short enough that a degradation is answered within a minute.
    public string ProtectionWindow { get; init; } = "30s";

    // The fewest attempts (for the error rate) and first tokens (for the TTFT) a window needs
    // before protection judges it: 20, so one failure among a handful sheds nobody.
    public int ProtectionMinSamples { get; init; } = 20;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
