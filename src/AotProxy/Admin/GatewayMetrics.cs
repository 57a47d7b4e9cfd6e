using System.Collections.Concurrent;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Http;
using AotProxy.Limits;
using AotProxy.Routing;
using Prometheus;

namespace AotProxy.Admin;

// The SPEC's metric names, on a registry of our own (tests run several gateways in one process).
// Gauges that mirror state (in-flight, healthy workers) are filled just before each scrape,
// so the hot path pays nothing for them. The hot path's labelled children are looked up once
// and kept: prometheus-net's WithLabels allocates on every call. Label values come from the
// config (models, classes, tenants) or a fixed set (statuses), so the caches stay small.
internal sealed class GatewayMetrics
{
    private readonly ConcurrentDictionary<(string Model, string Class, int Status), Counter.Child> _requests = new();
    private readonly ConcurrentDictionary<string, Histogram.Child> _latency = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram.Child> _ttft = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Tenant, bool Prompt), Counter.Child> _tokens = new();
    private readonly ConcurrentDictionary<string, Counter.Child> _cachedTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _reasoningTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _estimated = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _retries = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Class, AdmissionDecision Decision), Counter.Child> _admissions = new();
    private readonly ConcurrentDictionary<string, Histogram.Child> _queueWait = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _limited = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Tenant, LimitRefusal Reason), Counter.Child> _rejected = new();
    private readonly ConcurrentDictionary<string, Histogram.Child> _pacingWait = new(StringComparer.Ordinal);

    private static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(0.001, 2, 18); // 1 ms .. ~2 min

    public GatewayMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        Requests = factory.CreateCounter("llm_gateway_requests_total", "Requests by model, class and final HTTP status.", ["model", "class", "status"]);
        ActiveRequests = factory.CreateGauge("llm_gateway_active_requests", "Requests being proxied right now.");
        RequestLatency = factory.CreateHistogram("llm_gateway_request_latency_seconds", "Time from request start to the last response byte.", ["model"], new HistogramConfiguration { Buckets = LatencyBuckets });
        Ttft = factory.CreateHistogram("llm_gateway_ttft_seconds", "Time from the upstream send to the first response byte (for streams: the first token).", ["model"], new HistogramConfiguration { Buckets = LatencyBuckets });
        HealthyWorkers = factory.CreateGauge("llm_gateway_healthy_workers", "Routable workers per model.", ["model"]);
        Tokens = factory.CreateCounter("llm_gateway_tokens_total", "Tokens used, from the upstream's usage (or the gateway's estimate, see llm_gateway_estimated_usage_total).", ["tenant", "kind"]);
        // Not more `kind`s of llm_gateway_tokens_total: SPEC.md fixes kind = prompt | completion,
        // and cached tokens are part of the prompt (reasoning part of the completion), so a sum
        // over kind would count them twice.
        CachedPromptTokens = factory.CreateCounter("llm_gateway_cached_prompt_tokens_total", "Prompt tokens the upstream served from its prefix cache (usage.prompt_tokens_details.cached_tokens); part of kind=\"prompt\".", ["tenant"]);
        ReasoningTokens = factory.CreateCounter("llm_gateway_reasoning_tokens_total", "Completion tokens spent on reasoning (usage.completion_tokens_details.reasoning_tokens); part of kind=\"completion\".", ["tenant"]);
        EstimatedUsage = factory.CreateCounter("llm_gateway_estimated_usage_total", "Requests accounted with estimated usage: the response ended (cut, client gone, timeout) without reporting it.", ["tenant"]);
        ConfigReloads = factory.CreateCounter("llm_gateway_config_reloads_total", "Config reloads by result.", ["result"]);
        WorkerInFlight = factory.CreateGauge("llm_worker_in_flight", "Requests the gateway has in flight on the worker.", ["worker"]);
        WorkerRunning = factory.CreateGauge("llm_worker_running_requests", "vllm:num_requests_running from the worker's last good /metrics scrape.", ["worker"]);
        WorkerWaiting = factory.CreateGauge("llm_worker_waiting_requests", "vllm:num_requests_waiting from the worker's last good /metrics scrape.", ["worker"]);
        WorkerKvCache = factory.CreateGauge("llm_worker_kv_cache_usage", "KV-cache usage (0..1) from the worker's last good /metrics scrape.", ["worker"]);
        BreakerState = factory.CreateGauge("llm_circuit_breaker_state", "Circuit breaker per worker: 0 closed, 1 open, 2 half-open.", ["worker"]);
        BreakerFailures = factory.CreateCounter("llm_circuit_breaker_failures_total", "Failures the worker's breaker counted (transport errors, 5xx, slow first bytes).", ["worker"]);
        Retries = factory.CreateCounter("llm_gateway_retries_total", "Requests retried on another worker, by the worker that failed them.", ["worker"]);
        QueueDepth = factory.CreateGauge("llm_gateway_queue_depth", "Requests waiting for a slot, by class (all models).", ["class"]);
        QueueWait = factory.CreateHistogram("llm_gateway_queue_wait_seconds", "Time a queued request waited, granted or not, by class.", ["class"], new HistogramConfiguration { Buckets = LatencyBuckets });
        Admissions = factory.CreateCounter("llm_gateway_admissions_total", "Admission decisions by class: admitted (straight on), granted (after queueing), queue_full, timed_out, capacity_guard, no_capacity, cancelled.", ["class", "outcome"]);
        RateLimiterRequests = factory.CreateCounter("llm_rate_limiter_requests_total", "Requests of tenants with rpm, tpm, max_in_flight or a budget that reached the limit check.", ["tenant"]);
        RateLimiterBudgetLeft = factory.CreateGauge("llm_rate_limiter_budget_left", "What each budget of a tenant with budgets has left for new requests (budget - spent - reserved, at least 0), by budget: tokens, monthly_tokens (tokens), usd, monthly_usd (USD). Set at scrape time.", ["tenant", "budget"]);
        RateLimiterRejected = factory.CreateCounter("llm_rate_limiter_rejected_total", "Requests refused with 429 by a tenant limit, by reason: requests (rpm), tokens (tpm), in_flight (max_in_flight), budget_tokens and budget_usd (a used-up budget, or max_tokens above what is left with budget_overrun = \"reject\").", ["tenant", "reason"]);
        // Upstream pacing (workers with rpm/tpm). The counters mirror the pacers' own and are set
        // at scrape time; only the wait histogram is observed on the request's path.
        PacedRequests = factory.CreateCounter("llm_worker_paced_requests_total", "Requests the worker's upstream pacing (rpm/tpm) let go, at once or after waiting.", ["worker"]);
        PacingWaits = factory.CreateCounter("llm_worker_pacing_waits_total", "Requests that had to wait for the worker's pacing, granted or not.", ["worker"]);
        PacingWait = factory.CreateHistogram("llm_worker_pacing_wait_seconds", "Time a request waited for the worker's pacing, granted or not (requests that went at once are not observed).", ["worker"], new HistogramConfiguration { Buckets = LatencyBuckets });
        PacingTimeouts = factory.CreateCounter("llm_worker_pacing_timeouts_total", "Requests refused with 503 because the worker's pacing gave no turn within max_wait.", ["worker"]);
        PacingWindowRequests = factory.CreateGauge("llm_worker_pacing_window_requests", "Requests started on the paced worker in the last 60 s.", ["worker"]);
        PacingWindowTokens = factory.CreateGauge("llm_worker_pacing_window_tokens", "Tokens reserved (prompt estimate + max_tokens) on the paced worker in the last 60 s.", ["worker"]);
        LedgerRows = factory.CreateCounter("llm_gateway_ledger_rows_total", "Rows the usage ledger has written.");
        LedgerDropped = factory.CreateCounter("llm_gateway_ledger_dropped_total", "Ledger rows lost: its queue was full (ledger.queue_capacity) or a write failed. The in-memory totals still count them.");
        LedgerQueueDepth = factory.CreateGauge("llm_gateway_ledger_queue_depth", "Ledger rows queued and not yet written.");
        LedgerBatchSeconds = factory.CreateGauge("llm_gateway_ledger_batch_seconds", "How long the usage ledger's last batch insert (one transaction) took.");
        ConfigReloads.WithLabels("ok");
        ConfigReloads.WithLabels("error");
    }

    public CollectorRegistry Registry { get; }

    public Counter Requests { get; }

    public Gauge ActiveRequests { get; }

    public Histogram RequestLatency { get; }

    public Histogram Ttft { get; }

    public Gauge HealthyWorkers { get; }

    public Counter Tokens { get; }

    public Counter CachedPromptTokens { get; }

    public Counter ReasoningTokens { get; }

    public Counter EstimatedUsage { get; }

    public Counter ConfigReloads { get; }

    public Gauge WorkerInFlight { get; }

    public Gauge WorkerRunning { get; }

    public Gauge WorkerWaiting { get; }

    public Gauge WorkerKvCache { get; }

    public Gauge BreakerState { get; }

    public Counter BreakerFailures { get; }

    public Counter Retries { get; }

    public Gauge QueueDepth { get; }

    public Histogram QueueWait { get; }

    public Counter Admissions { get; }

    public Counter RateLimiterRequests { get; }

    public Counter RateLimiterRejected { get; }

    // Series only for tenants with a budget, and only for the budgets they have.
    public Gauge RateLimiterBudgetLeft { get; }

    public Counter PacedRequests { get; }

    public Counter PacingWaits { get; }

    public Histogram PacingWait { get; }

    public Counter PacingTimeouts { get; }

    public Gauge PacingWindowRequests { get; }

    public Gauge PacingWindowTokens { get; }

    // Set at scrape time from LedgerWriter's counters: the hot path pays nothing for them.
    public Counter LedgerRows { get; }

    public Counter LedgerDropped { get; }

    public Gauge LedgerQueueDepth { get; }

    public Gauge LedgerBatchSeconds { get; }

    // Drops the series of workers that are gone, so dashboards don't show ghosts.
    public void PruneWorkers(Func<string, bool> exists)
    {
        Prune(WorkerInFlight, exists);
        Prune(WorkerRunning, exists);
        Prune(WorkerWaiting, exists);
        Prune(WorkerKvCache, exists);
        Prune(BreakerState, exists);
        Prune(BreakerFailures, exists);
        Prune(Retries, exists);
        Prune(PacedRequests, exists);
        Prune(PacingWaits, exists);
        Prune(PacingWait, exists);
        Prune(PacingTimeouts, exists);
        Prune(PacingWindowRequests, exists);
        Prune(PacingWindowTokens, exists);
        foreach (var name in _pacingWait.Keys)
        {
            if (!exists(name))
            {
                _pacingWait.TryRemove(name, out _);
            }
        }

        foreach (var name in _retries.Keys)
        {
            if (!exists(name))
            {
                _retries.TryRemove(name, out _);
            }
        }
    }

    // Every series whose first label fails `keep` is removed.
    public static void Prune<TChild>(Collector<TChild> collector, Func<string, bool> keep)
        where TChild : ChildBase
    {
        foreach (var labels in collector.GetAllLabelValues().ToArray())
        {
            if (!keep(labels[0]))
            {
                collector.RemoveLabelled(labels);
            }
        }
    }

    public void CountRequest(string model, string @class, int status) =>
        _requests.GetOrAdd((model, @class, status), static (key, counter) => counter.WithLabels(key.Model, key.Class, StatusText.Of(key.Status)), Requests).Inc();

    public void ObserveLatency(string model, TimeSpan elapsed) =>
        _latency.GetOrAdd(model, static (key, histogram) => histogram.WithLabels(key), RequestLatency).Observe(elapsed.TotalSeconds);

    public void ObserveTtft(string model, TimeSpan elapsed) =>
        _ttft.GetOrAdd(model, static (key, histogram) => histogram.WithLabels(key), Ttft).Observe(elapsed.TotalSeconds);

    public void CountRetry(string worker) =>
        Child(_retries, Retries, worker).Inc();

    public void ObservePacingWait(string worker, TimeSpan waited) =>
        _pacingWait.GetOrAdd(worker, static (key, histogram) => histogram.WithLabels(key), PacingWait).Observe(waited.TotalSeconds);

    public void CountAdmission(string @class, AdmissionDecision decision) =>
        _admissions.GetOrAdd((@class, decision), static (key, counter) => counter.WithLabels(key.Class, EnumNames.Snake(key.Decision)), Admissions).Inc();

    public void ObserveQueueWait(string @class, TimeSpan waited) =>
        _queueWait.GetOrAdd(@class, static (key, histogram) => histogram.WithLabels(key), QueueWait).Observe(waited.TotalSeconds);

    public void CountLimitCheck(string tenant) =>
        Child(_limited, RateLimiterRequests, tenant).Inc();

    public void CountLimitRefusal(string tenant, LimitRefusal reason) =>
        _rejected.GetOrAdd((tenant, reason), static (key, counter) => counter.WithLabels(key.Tenant, EnumNames.Snake(key.Reason)), RateLimiterRejected).Inc();

    public void CountUsage(string tenant, Usage usage)
    {
        _tokens.GetOrAdd((tenant, true), static (key, counter) => counter.WithLabels(key.Tenant, "prompt"), Tokens).Inc(usage.PromptTokens);
        _tokens.GetOrAdd((tenant, false), static (key, counter) => counter.WithLabels(key.Tenant, "completion"), Tokens).Inc(usage.CompletionTokens);
        Child(_cachedTokens, CachedPromptTokens, tenant).Inc(usage.CachedPromptTokens);
        Child(_reasoningTokens, ReasoningTokens, tenant).Inc(usage.ReasoningTokens);
        Child(_estimated, EstimatedUsage, tenant).Inc(usage.Estimated ? 1 : 0);
    }

    // The child of a counter with one label, looked up once.
    private static Counter.Child Child(ConcurrentDictionary<string, Counter.Child> children, Counter counter, string label) =>
        children.GetOrAdd(label, static (key, counter) => counter.WithLabels(key), counter);

    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) =>
        Registry.CollectAndExportAsTextAsync(destination, cancellationToken);
}
