namespace AotProxy.Routing;

// One worker's load, read from one /metrics scrape. Values are as vLLM wrote them (floats);
// a field is meaningful only when Present says so. Only series of the reader's models count
// (VllmModelFilter).
internal readonly record struct VllmMetrics(
    VllmMetricFields Present,
    double Running,            // vllm:num_requests_running, summed over label sets (engines, models)
    double Waiting,            // vllm:num_requests_waiting, summed likewise
    double KvCacheUsage,       // 0..1, the mean over engines: each data-parallel engine has its own cache of the same size
    double PrefixCacheQueries, // tokens, a counter: the scorer uses deltas between scrapes
    double PrefixCacheHits,
    long NumGpuBlocks,         // vllm:cache_config_info's num_gpu_blocks label, summed over engines: the worker's KV capacity
    int BlockSize,             // its block_size label (tokens per block), the largest if engines differ
    int Samples,               // well-formed sample lines of any metric
    int InvalidLines,          // lines that are not Prometheus text, skipped
    int RejectedValues,        // samples of the fields above whose value was NaN, ±Inf or negative (or a label not a count), skipped
    int OtherModelSamples,     // samples of the fields above skipped because their model_name is none of the reader's models
    LoraAdapters Lora = default, // vllm:lora_requests_info's newest sample
    double Preemptions = 0)    // vllm:num_preemptions_total, a counter: a rise means the worker dropped cached blocks to make room
{
    public VllmMetricsStatus Status =>
        (Present & VllmMetricFields.Load) == VllmMetricFields.Load ? VllmMetricsStatus.Complete
        : (Present & VllmMetricFields.Load) != 0 ? VllmMetricsStatus.Partial
        : VllmMetricsStatus.Invalid;

    public bool Has(VllmMetricFields fields) => (Present & fields) == fields;
}
