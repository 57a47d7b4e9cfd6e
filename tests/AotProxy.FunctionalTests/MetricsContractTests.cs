using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// /metrics is a contract: dashboards and alerts outside this repository read these names, types,
// label names, help texts and buckets (SPEC.md "Metric names"). The list below is the one the
// gateway wrote before its metrics moved next to the stages (issue 15, item 4); a change to it
// must be deliberate.
public partial class MetricsContractTests
{
    private const string RateLimitedKey = "sk-test-metrics-contract";

    // name, type, label names (series lines; histograms without `le`), help text. The SPEC.md list
    // is marked "spec".
    private static readonly (string Name, string Type, string Labels, string Help)[] Expected =
    [
        ("llm_gateway_requests_total", "counter", "model,class,status", "Requests by model, class and final HTTP status."), // spec
        ("llm_gateway_active_requests", "gauge", "", "Requests being proxied right now."), // spec
        ("llm_gateway_request_latency_seconds", "histogram", "model", "Time from request start to the last response byte."), // spec
        ("llm_gateway_ttft_seconds", "histogram", "model", "Time from the upstream send to the first response byte (for streams: the first token)."), // spec
        ("llm_gateway_class_ttft_seconds", "histogram", "class", "Time to first byte as llm_gateway_ttft_seconds, by the caller's class."),
        ("llm_gateway_class_ttft_sla_seconds", "gauge", "class", "The class's promised p95 time to first token ([[classes]] ttft_sla); classes without one have no series."),
        ("llm_gateway_overhead_seconds", "histogram", "model", "The gateway's own time on a request a worker answered, up to the response head (x-gateway-overhead-ms): from its arrival, less its admission queue wait and its earlier attempts' time on workers."),
        ("llm_gateway_healthy_workers", "gauge", "model", "Routable workers per model."), // spec
        ("llm_gateway_tokens_total", "counter", "tenant,kind", "Tokens used, from the upstream's usage (or the gateway's estimate, see llm_gateway_estimated_usage_total)."), // spec
        ("llm_gateway_cached_prompt_tokens_total", "counter", "tenant", "Prompt tokens the upstream served from its prefix cache (usage.prompt_tokens_details.cached_tokens); part of kind=\"prompt\"."),
        ("llm_gateway_reasoning_tokens_total", "counter", "tenant", "Completion tokens spent on reasoning (usage.completion_tokens_details.reasoning_tokens); part of kind=\"completion\"."),
        ("llm_gateway_estimated_usage_total", "counter", "tenant", "Requests accounted with estimated usage: the response ended (cut, client gone, timeout) without reporting it."),
        ("llm_gateway_config_reloads_total", "counter", "result", "Config reloads by result."), // spec
        ("llm_worker_in_flight", "gauge", "worker", "Requests the gateway has in flight on the worker."), // spec
        ("llm_worker_slots", "gauge", "worker", "Admission slots on the worker: max_concurrency, or what scheduler.adaptive_slots learned (compare llm_worker_in_flight)."),
        ("llm_worker_running_requests", "gauge", "worker", "vllm:num_requests_running from the worker's last good /metrics scrape."), // spec
        ("llm_worker_waiting_requests", "gauge", "worker", "vllm:num_requests_waiting from the worker's last good /metrics scrape."), // spec
        ("llm_worker_kv_cache_usage", "gauge", "worker", "KV-cache usage (0..1) from the worker's last good /metrics scrape."), // spec
        ("llm_circuit_breaker_state", "gauge", "worker", "Circuit breaker per worker: 0 closed, 1 open, 2 half-open."), // spec
        ("llm_circuit_breaker_failures_total", "counter", "worker", "Failures the worker's breaker counted (transport errors, 5xx, slow first bytes)."), // spec
        ("llm_worker_push_backs_total", "counter", "worker,status", "503 (queue full) and 429 answers of the worker: retried elsewhere when another worker could take the request; never a breaker failure."), // issue 19's contract
        ("llm_gateway_retries_total", "counter", "worker", "Requests retried on another worker, by the worker that failed them."), // spec
        ("llm_gateway_queue_depth", "gauge", "class", "Requests waiting for a slot, by class (all models)."), // spec
        ("llm_gateway_queue_wait_seconds", "histogram", "class", "Time a queued request waited, granted or not, by class."), // spec
        ("llm_gateway_admissions_total", "counter", "class,outcome", "Admission decisions by class: admitted (straight on), granted (after queueing), queue_full, timed_out, capacity_guard, shed, no_capacity, cancelled."), // spec
        ("llm_gateway_class_shedding", "gauge", "class", "1 while per-class protection sheds the class's new requests (on any model pool), else 0."),
        ("llm_gateway_parked_connections", "gauge", "", "Idle keep-alive client connections parked outside Kestrel's HTTP state (server.park_idle_after)."), // issue 22
        ("llm_gateway_connection_parks_total", "counter", "", "Times an idle keep-alive client connection was parked (once per idle period)."), // issue 22
        ("llm_gateway_idle_collections_total", "counter", "", "Full garbage collections after a batch of parks (256 since the last one) while no request was in flight: they give the parked connections' HTTP state back to the OS."), // issue 22
        ("llm_gateway_idle_collection_pause_seconds_total", "counter", "", "Time the process stood still in those collections."), // issue 22
        ("llm_gateway_class_admit_fraction", "gauge", "class", "The share of the class's new requests per-class protection admits: 0 shed, 0.25 then 0.5 while it comes back half-open, 1 (the lowest over the model pools)."),
        ("llm_gateway_budget_cutoffs_total", "counter", "tenant", "Streams ended mid-way at their tenant's budget (stream_budget_cutoff) with the budget_exhausted event."), // issue 20's contract
        ("llm_gateway_preemptions_total", "counter", "class", "Admitted requests of a preemptible class cancelled upstream before their first byte and requeued, by class."), // issue 20's contract
        ("llm_rate_limiter_requests_total", "counter", "tenant", "Requests of tenants with rpm, tpm, max_in_flight or a budget that reached the limit check."), // spec
        ("llm_rate_limiter_budget_left", "gauge", "tenant,budget", "What each budget of a tenant with budgets has left for new requests (budget - spent - reserved, at least 0), by budget: tokens, monthly_tokens (tokens), usd, monthly_usd (USD). Set at scrape time."),
        ("llm_rate_limiter_rejected_total", "counter", "tenant,reason", "Requests refused with 429 by a tenant limit, by reason: requests (rpm), tokens (tpm), in_flight (max_in_flight), budget_tokens and budget_usd (a used-up budget, or max_tokens above what is left with budget_overrun = \"reject\")."), // spec
        ("llm_worker_paced_requests_total", "counter", "worker", "Requests the worker's upstream pacing (rpm/tpm) let go, at once or after waiting."),
        ("llm_worker_pacing_waits_total", "counter", "worker", "Requests that had to wait for the worker's pacing, granted or not."),
        ("llm_worker_pacing_wait_seconds", "histogram", "worker", "Time a request waited for the worker's pacing, granted or not (requests that went at once are not observed)."),
        ("llm_worker_pacing_timeouts_total", "counter", "worker", "Requests refused with 503 because the worker's pacing gave no turn within max_wait."),
        ("llm_worker_pacing_window_requests", "gauge", "worker", "Requests started on the paced worker in the last 60 s."),
        ("llm_worker_pacing_window_tokens", "gauge", "worker", "Tokens reserved (prompt estimate + max_tokens) on the paced worker in the last 60 s."),
        ("llm_gateway_ledger_rows_total", "counter", "", "Rows the usage ledger has written."),
        ("llm_gateway_ledger_dropped_total", "counter", "", "Ledger rows lost: its queue was full (ledger.queue_capacity) or a write failed. The in-memory totals still count them."),
        ("llm_gateway_ledger_queue_depth", "gauge", "", "Ledger rows queued and not yet written."),
        ("llm_gateway_ledger_batch_seconds", "gauge", "", "How long the usage ledger's last batch insert (one transaction) took."),
        ("llm_gateway_trace_spans_exported_total", "counter", "", "Spans the OTLP receiver accepted."),
        ("llm_gateway_trace_spans_dropped_total", "counter", "reason", "Spans not exported, by reason: queue_full (telemetry.max_queued_spans) or export_failed."),
        ("llm_gateway_response_cache_hits_total", "counter", "model", "Cacheable requests answered from the exact response cache, by served model."), // issue 21's contract
        ("llm_gateway_response_cache_misses_total", "counter", "model", "Cacheable requests the exact response cache did not hold, by served model (sent on to a worker)."),
        ("llm_gateway_response_cache_bytes", "gauge", "", "Bytes the exact response cache holds (answers and their bookkeeping), at most [response_cache] max_bytes."),
    ];

    // [cluster]'s own families (a lone gateway has none of them), pinned the same way.
    private static readonly (string Name, string Type, string Labels, string Help)[] ClusterExpected =
    [
        ("llm_gateway_cluster_store_down_decisions_total", "counter", "mode,outcome", "Requests of limited tenants decided without the cluster store (unreachable), by store_down mode (local, closed) and outcome (admitted within this replica's 1/N share, refused)."),
        ("llm_gateway_cluster_recharged_requests_total", "counter", "reason", "Requests this replica admitted in the last 60 s that it charged into the shared windows when the store answered again: those admitted while it was down, or all of them after the store restarted empty (reason: down, reseed)."),
        ("llm_gateway_cluster_store_up", "gauge", "", "1 while this replica's last heartbeat reached the cluster store, else 0 (serving by store_down)."),
        ("llm_gateway_cluster_fair_share_deferred_total", "counter", "model", "Grants this replica's fairest waiter was refused, and turns on the fleet's workers that had to wait, because the tenant was more than 256 weighted tokens / its weight of service ahead of the fleet's least-served backlogged tenant (the slot went to a waiter of that tenant here, or to another replica)."),
    ];

    // Metrics whose series this test does not bring about (no queueing, no retry, no pacing wait, no
    // budget cutoff, no response cache): their header is checked, their label names are not.
    private static readonly string[] NoSeries = ["llm_gateway_retries_total", "llm_gateway_budget_cutoffs_total", "llm_gateway_queue_wait_seconds", "llm_worker_pacing_wait_seconds", "llm_worker_pacing_timeouts_total", "llm_gateway_response_cache_hits_total", "llm_gateway_response_cache_misses_total"];

    [Fact]
    public async Task Metrics_WritesTheContractsNamesTypesLabelsHelpTextsAndBuckets()
    {
        // A paced worker (rpm), a tenant with an rpm and a budget, one request it may make and one
        // it may not, a class with a ttft_sla (and one without, preemptible): every family above has a series
        // except those in NoSeries.
        await using var gateway = await TestGateway.StartAsync(
            workers: 1,
            extraToml: $"""
                rpm = 600

                [[tenants]]
                name = "metered"
                api_key_sha256 = ["{ApiKeyIndex.HashKey(RateLimitedKey)}"]
                rpm = 1
                budget_tokens = 100000

                [[classes]]
                name = "default"
                ttft_sla = "1500ms"

                [[classes]]
                name = "bulk"
                preemptible = true
                """);
        using (var ok = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4), key: RateLimitedKey)))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            await ok.Content.ReadAsStringAsync();
        }

        using (var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key: RateLimitedKey)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }

        await Fleet.TenantAfterAsync(gateway, "metered", 1, handled: 2); // the refused one is counted, not accounted
        await TestGateway.WaitUntilAsync(async () => Fleet.HasSeries(await gateway.MetricsAsync(), "llm_worker_kv_cache_usage", "sim-0"), "a fresh scrape of sim-0");
        var text = await gateway.MetricsAsync();

        var help = Headers(text, "# HELP ");
        var types = Headers(text, "# TYPE ");
        Assert.Equal(Expected.Select(e => e.Name).Order(StringComparer.Ordinal), types.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, type, labels, helpText) in Expected)
        {
            Assert.Equal((name, type), (name, types[name]));
            Assert.Equal((name, helpText), (name, Unescape(help[name])));
            var seen = LabelNames(text, name, type);
            if (NoSeries.Contains(name))
            {
                Assert.True(seen.Count == 0 || seen.SetEquals([labels]), $"{name}: {string.Join(" | ", seen)}");
            }
            else
            {
                Assert.Equal((name, labels), (name, string.Join(" | ", seen)));
            }
        }

        // The request's histograms: 1 ms doubling 18 times (~2 min), then +Inf; the gateway's
        // overhead: 50 µs doubling 15 times (~0.8 s), then +Inf.
        double[] latency = [.. Enumerable.Range(0, 18).Select(i => 0.001 * Math.Pow(2, i)), double.PositiveInfinity];
        double[] overhead = [.. Enumerable.Range(0, 15).Select(i => 0.00005 * Math.Pow(2, i)), double.PositiveInfinity];
        foreach (var (name, buckets) in new[] { ("llm_gateway_request_latency_seconds", latency), ("llm_gateway_ttft_seconds", latency), ("llm_gateway_class_ttft_seconds", latency), ("llm_gateway_overhead_seconds", overhead) })
        {
            var le = text.Split('\n')
                .Where(l => l.StartsWith(name + "_bucket{", StringComparison.Ordinal))
                .Select(l => LeLabel().Match(l).Groups[1].Value)
                .Select(v => v == "+Inf" ? double.PositiveInfinity : double.Parse(v, CultureInfo.InvariantCulture))
                .ToArray();
            Assert.Equal(buckets.Length, le.Length);
            for (var i = 0; i < buckets.Length; i++)
            {
                Assert.Equal(buckets[i], le[i], 1e-9);
            }
        }

        // The alert rules' inputs (deploy/prometheus/rules.yml): the SLA of the class that has one,
        // the one request that reached a worker observed under its caller's class, and the slots.
        Assert.Equal(1.5, MetricsText.Value(text, "llm_gateway_class_ttft_sla_seconds", "class=\"default\""));
        Assert.DoesNotContain("llm_gateway_class_ttft_sla_seconds{class=\"bulk\"}", text, StringComparison.Ordinal);
        Assert.Equal(1, MetricsText.Value(text, "llm_gateway_class_ttft_seconds_count", "class=\"default\""));
        Assert.Equal(gateway.Workers[0].Options.MaxNumSeqs, MetricsText.Value(text, "llm_worker_slots", "worker=\"sim-0\""));
    }

    // With [cluster] redis_url set: the cluster's families, each with its help text and labels
    // (recharged_requests_total has a series only once something was re-charged). Seen failing while the
    // fair share counter's help still said "one request's cost ahead": the rule is a fixed slack
    // of 256 weighted tokens per weight (SharedVtc.SlackMicro).
    [Fact]
    public async Task Metrics_InClusterMode_WritesTheClusterFamiliesNamesTypesLabelsAndHelpTexts()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var gateway = await TestGateway.StartAsync(
            workers: 1,
            extraToml: $"""

                [cluster]
                redis_url = "{redis.Url}"
                replica = "metrics"
                heartbeat = "200ms"
                member_ttl = "1s"
                """);
        await TestGateway.WaitUntilAsync(async () => (await gateway.MetricsAsync()).Contains("llm_gateway_cluster_store_up 1", StringComparison.Ordinal), "the store is up");
        using (var ok = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4))))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        var text = await gateway.MetricsAfterAsync(1); // the request's series, once its finally has counted it
        var help = Headers(text, "# HELP ");
        var types = Headers(text, "# TYPE ");
        Assert.Equal(ClusterExpected.Select(e => e.Name).Order(StringComparer.Ordinal), types.Keys.Where(n => n.StartsWith("llm_gateway_cluster_", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        foreach (var (name, type, labels, helpText) in ClusterExpected)
        {
            Assert.Equal((name, type), (name, types[name]));
            Assert.Equal((name, helpText), (name, Unescape(help[name])));
            var seen = LabelNames(text, name, type);
            if (name == "llm_gateway_cluster_recharged_requests_total")
            {
                Assert.True(seen.Count == 0 || seen.SetEquals([labels]), $"{name}: {string.Join(" | ", seen)}");
            }
            else
            {
                Assert.Equal((name, labels), (name, string.Join(" | ", seen)));
            }
        }
    }

    private static Dictionary<string, string> Headers(string text, string prefix) =>
        text.Split('\n')
            .Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => l[prefix.Length..])
            .ToDictionary(l => l[..l.IndexOf(' ', StringComparison.Ordinal)], l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..], StringComparer.Ordinal);

    private static string Unescape(string help) => help.Replace("\\\\", "\\", StringComparison.Ordinal).Replace("\\n", "\n", StringComparison.Ordinal);

    // The label-name lists of the metric's series ("a,b", "" for none), histograms' `le` aside.
    private static HashSet<string> LabelNames(string text, string name, string type)
    {
        string[] suffixes = type == "histogram" ? ["_bucket", "_sum", "_count"] : [""];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            foreach (var suffix in suffixes)
            {
                var series = name + suffix;
                if (line.StartsWith(series, StringComparison.Ordinal) && line.Length > series.Length && line[series.Length] is '{' or ' ')
                {
                    var labels = line[series.Length] == '{' ? line[(series.Length + 1)..line.LastIndexOf('}')] : "";
                    seen.Add(string.Join(',', LabelName().Matches(labels).Select(m => m.Groups[1].Value).Where(l => l != "le")));
                }
            }
        }

        return seen;
    }

    [GeneratedRegex("""([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"(?:,|$)""")]
    private static partial Regex LabelName();

    [GeneratedRegex("le=\"([^\"]*)\"")]
    private static partial Regex LeLabel();
}
