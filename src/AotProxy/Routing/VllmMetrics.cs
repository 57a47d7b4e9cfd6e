namespace AotProxy.Routing;

// One worker's load, read from one /metrics scrape. Values are as vLLM wrote them (floats);
// a field is meaningful only when Present says so.
internal readonly record struct VllmMetrics(
    VllmMetricFields Present,
    double Running,            // vllm:num_requests_running, summed over label sets (engines, models)
    double Waiting,            // vllm:num_requests_waiting, summed likewise
    double KvCacheUsage,       // 0..1, the mean over engines: each data-parallel engine has its own cache of the same size
    double PrefixCacheQueries, // tokens, a counter: the scorer uses deltas between scrapes
    double PrefixCacheHits,
    int Samples,               // well-formed sample lines of any metric
    int InvalidLines,          // lines that are not Prometheus text, skipped
    int RejectedValues)        // samples of the fields above whose value was NaN, ±Inf or negative, skipped
{
    public VllmMetricsStatus Status =>
        (Present & VllmMetricFields.Load) == VllmMetricFields.Load ? VllmMetricsStatus.Complete
        : (Present & VllmMetricFields.Load) != 0 ? VllmMetricsStatus.Partial
        : VllmMetricsStatus.Invalid;

    public bool Has(VllmMetricFields fields) => (Present & fields) == fields;
}
