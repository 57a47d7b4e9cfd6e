using System.Text;

namespace AotProxy.Simulator;

// GET /metrics with vLLM's names, labels, HELP texts and family order, modelled on
// fixtures/vllm/metrics-v1-0.19.1.txt (V1) and metrics-v0-partial.txt (V0). A subset of the
// families, but every family a router reads is here, with current engine values, plus a few that
// trip careless parsers: num_requests_waiting_by_reason shares a prefix with num_requests_waiting,
// iteration_tokens_total is a histogram despite its suffix, and each counter has a _created gauge.
internal sealed class VllmMetricsWriter(SimulatorOptions options, SimulatorStats stats, SimulatorEngine engine)
{
    public string Write() => options.MetricsFormat == MetricsFormat.V0 ? WriteV0() : WriteV1();

    private string WriteV1()
    {
        var text = new StringBuilder(16 * 1024);
        var model = PrometheusText.Label("model_name", options.Model);
        var labels = $"engine=\"0\",{model}";
        var created = engine.CreatedUnixSeconds;

        WriteProcessFamilies(text, created);

        Gauge(text, "vllm:num_requests_running", "Number of requests in model execution batches.", labels, stats.Running);
        Gauge(text, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, stats.Waiting);
        PrometheusText.Family(text, "vllm:num_requests_waiting_by_reason", "Number of requests waiting to be processed, by reason.", "gauge");
        PrometheusText.Sample(text, "vllm:num_requests_waiting_by_reason", $"{labels},reason=\"capacity\"", stats.Waiting);
        PrometheusText.Sample(text, "vllm:num_requests_waiting_by_reason", $"{labels},reason=\"deferred\"", 0);

        PrometheusText.Family(text, "vllm:engine_sleep_state", "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.", "gauge");
        PrometheusText.Sample(text, "vllm:engine_sleep_state", $"{labels},sleep_state=\"awake\"", 1);
        PrometheusText.Sample(text, "vllm:engine_sleep_state", $"{labels},sleep_state=\"weights_offloaded\"", 0);
        PrometheusText.Sample(text, "vllm:engine_sleep_state", $"{labels},sleep_state=\"discard_all\"", 0);

        Gauge(text, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, stats.KvCacheUsage);

        Counter(text, "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", labels, stats.PrefixCacheQueries, created);
        Counter(text, "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", labels, stats.PrefixCacheHits, created);
        Counter(text, "vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, stats.Preemptions, created);
        Counter(text, "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, stats.PromptTokens, created);

        const string bySource = "Number of prompt tokens by source.";
        PrometheusText.Family(text, "vllm:prompt_tokens_by_source_total", bySource, "counter");
        PrometheusText.Sample(text, "vllm:prompt_tokens_by_source_total", $"{labels},source=\"local_compute\"", stats.PromptTokens - stats.PrefixCacheHits);
        PrometheusText.Sample(text, "vllm:prompt_tokens_by_source_total", $"{labels},source=\"local_cache_hit\"", stats.PrefixCacheHits);
        PrometheusText.Sample(text, "vllm:prompt_tokens_by_source_total", $"{labels},source=\"external_kv_transfer\"", 0);
        PrometheusText.Family(text, "vllm:prompt_tokens_by_source_created", bySource, "gauge");
        foreach (var source in (string[])["local_compute", "local_cache_hit", "external_kv_transfer"])
        {
            PrometheusText.Sample(text, "vllm:prompt_tokens_by_source_created", $"{labels},source=\"{source}\"", created);
        }

        Counter(text, "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).", labels, stats.PrefixCacheHits, created);
        Counter(text, "vllm:generation_tokens", "Number of generation tokens processed.", labels, stats.GenerationTokens, created);

        const string success = "Count of successfully processed requests.";
        (string Reason, long Count)[] finished =
        [
            ("stop", stats.FinishedStop), ("length", stats.FinishedLength), ("abort", stats.Aborted), ("error", 0), ("repetition", 0),
        ];
        PrometheusText.Family(text, "vllm:request_success_total", success, "counter");
        foreach (var (reason, count) in finished)
        {
            PrometheusText.Sample(text, "vllm:request_success_total", $"engine=\"0\",finished_reason=\"{reason}\",{model}", count);
        }

        PrometheusText.Family(text, "vllm:request_success_created", success, "gauge");
        foreach (var (reason, _) in finished)
        {
            PrometheusText.Sample(text, "vllm:request_success_created", $"engine=\"0\",finished_reason=\"{reason}\",{model}", created);
        }

        Histogram(text, "vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", "engine=\"0\",", model, engine.IterationTokens);
        Gauge(text, "vllm:iteration_tokens_total_created", "Histogram of number of tokens per engine_step.", labels, created);
        Histogram(text, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", "engine=\"0\",", model, engine.TimeToFirstToken);
        Gauge(text, "vllm:time_to_first_token_seconds_created", "Histogram of time to first token in seconds.", labels, created);
        WriteLoraInfo(text);

        PrometheusText.Family(text, "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", "gauge");
        PrometheusText.Sample(
            text,
            "vllm:cache_config_info",
            $"block_size=\"{options.BlockSize}\",cache_dtype=\"auto\",calculate_kv_scales=\"False\",cpu_kvcache_space_bytes=\"None\",enable_prefix_caching=\"True\",engine=\"0\",gpu_memory_utilization=\"0.9\",is_attention_free=\"False\",num_cpu_blocks=\"None\",num_gpu_blocks=\"{options.NumGpuBlocks}\",num_gpu_blocks_override=\"None\",prefix_caching_hash_algo=\"sha256\",sliding_window=\"None\"",
            1);
        return text.ToString();
    }

    // V0 had no _created series in the captured fixture and no engine label.
    private string WriteV0()
    {
        var text = new StringBuilder(8 * 1024);
        var labels = PrometheusText.Label("model_name", options.Model);

        PrometheusText.Family(text, "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", "gauge");
        PrometheusText.Sample(
            text,
            "vllm:cache_config_info",
            $"block_size=\"{options.BlockSize}\",cache_dtype=\"auto\",calculate_kv_scales=\"False\",cpu_offload_gb=\"0\",enable_prefix_caching=\"True\",gpu_memory_utilization=\"0.9\",is_attention_free=\"False\",num_cpu_blocks=\"2048\",num_gpu_blocks=\"{options.NumGpuBlocks}\",num_gpu_blocks_override=\"None\",sliding_window=\"None\",swap_space_bytes=\"4294967296\"",
            1);
        Gauge(text, "vllm:num_requests_running", "Number of requests currently running on GPU.", labels, stats.Running);
        Gauge(text, "vllm:num_requests_swapped", "Number of requests swapped to CPU.", labels, 0);
        Gauge(text, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, stats.Waiting);
        Gauge(text, "vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", labels, stats.KvCacheUsage);
        Gauge(text, "vllm:cpu_cache_usage_perc", "CPU KV-cache usage. 1 means 100 percent usage.", labels, 0);
        Gauge(text, "vllm:cpu_prefix_cache_hit_rate", "CPU prefix cache block hit rate.", labels, -1);
        var queries = stats.PrefixCacheQueries;
        Gauge(text, "vllm:gpu_prefix_cache_hit_rate", "GPU prefix cache block hit rate.", labels, queries == 0 ? 0 : (double)stats.PrefixCacheHits / queries);
        PrometheusText.Family(text, "vllm:gpu_prefix_cache_queries_total", "GPU prefix cache queries, in terms of number of queried tokens.", "counter");
        PrometheusText.Sample(text, "vllm:gpu_prefix_cache_queries_total", labels, queries);
        PrometheusText.Family(text, "vllm:gpu_prefix_cache_hits_total", "GPU prefix cache hits, in terms of number of cached tokens.", "counter");
        PrometheusText.Sample(text, "vllm:gpu_prefix_cache_hits_total", labels, stats.PrefixCacheHits);
        PrometheusText.Family(text, "vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", "counter");
        PrometheusText.Sample(text, "vllm:num_preemptions_total", labels, stats.Preemptions);
        PrometheusText.Family(text, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", "counter");
        PrometheusText.Sample(text, "vllm:prompt_tokens_total", labels, stats.PromptTokens);
        PrometheusText.Family(text, "vllm:generation_tokens_total", "Number of generation tokens processed.", "counter");
        PrometheusText.Sample(text, "vllm:generation_tokens_total", labels, stats.GenerationTokens);
        PrometheusText.Family(text, "vllm:request_success_total", "Count of successfully processed requests.", "counter");
        PrometheusText.Sample(text, "vllm:request_success_total", $"finished_reason=\"stop\",{labels}", stats.FinishedStop);
        PrometheusText.Sample(text, "vllm:request_success_total", $"finished_reason=\"length\",{labels}", stats.FinishedLength);
        Histogram(text, "vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", string.Empty, labels, engine.IterationTokens);
        WriteLoraInfo(text);
        return text.ToString();
    }

    // vLLM writes it only with LoRA enabled: labels in prometheus_client's order, the value the
    // time of the update (set_to_current_time).
    private void WriteLoraInfo(StringBuilder text)
    {
        if (options.LoraModules.IsEmpty)
        {
            return;
        }

        var (running, waiting) = engine.LoraAdapters();
        Gauge(
            text,
            "vllm:lora_requests_info",
            "Running stats on lora requests.",
            $"max_lora=\"{options.MaxLoras}\",{PrometheusText.Label("running_lora_adapters", running)},{PrometheusText.Label("waiting_lora_adapters", waiting)}",
            options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0);
    }

    private static void WriteProcessFamilies(StringBuilder text, double created)
    {
        PrometheusText.Family(text, "python_info", "Python platform information", "gauge");
        PrometheusText.Sample(text, "python_info", "implementation=\"CPython\",major=\"3\",minor=\"12\",patchlevel=\"13\",version=\"3.12.13\"", 1);
        PrometheusText.Family(text, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge");
        PrometheusText.Sample(text, "process_start_time_seconds", string.Empty, Math.Round(created, 2));
    }

    private static void Gauge(StringBuilder text, string name, string help, string labels, double value)
    {
        PrometheusText.Family(text, name, help, "gauge");
        PrometheusText.Sample(text, name, labels, value);
    }

    private static void Counter(StringBuilder text, string baseName, string help, string labels, double value, double created)
    {
        PrometheusText.Family(text, baseName + "_total", help, "counter");
        PrometheusText.Sample(text, baseName + "_total", labels, value);
        Gauge(text, baseName + "_created", help, labels, created);
    }

    // Labels sort by name, so "le" falls between the prefix (engine) and model_name.
    private static void Histogram(StringBuilder text, string name, string help, string labelsBeforeLe, string labelsAfterLe, PrometheusHistogram histogram)
    {
        var (cumulative, count, sum) = histogram.Snapshot();
        var bounds = histogram.UpperBounds;
        PrometheusText.Family(text, name, help, "histogram");
        for (var i = 0; i < bounds.Count; i++)
        {
            PrometheusText.Sample(text, name + "_bucket", $"{labelsBeforeLe}le=\"{PrometheusText.FormatValue(bounds[i])}\",{labelsAfterLe}", cumulative[i]);
        }

        PrometheusText.Sample(text, name + "_bucket", $"{labelsBeforeLe}le=\"+Inf\",{labelsAfterLe}", count);
        var plain = labelsBeforeLe + labelsAfterLe;
        PrometheusText.Sample(text, name + "_count", plain, count);
        PrometheusText.Sample(text, name + "_sum", plain, sum);
    }
}
