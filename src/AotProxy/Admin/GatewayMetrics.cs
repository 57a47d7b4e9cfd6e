using Prometheus;

namespace AotProxy.Admin;

// The SPEC's metric names, on a registry of our own (tests run several gateways in one process).
// Gauges that mirror state (in-flight, healthy workers) are filled just before each scrape,
// so the hot path pays nothing for them.
internal sealed class GatewayMetrics
{
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
        Tokens = factory.CreateCounter("llm_gateway_tokens_total", "Tokens used, from the upstream's usage.", ["tenant", "kind"]);
        ConfigReloads = factory.CreateCounter("llm_gateway_config_reloads_total", "Config reloads by result.", ["result"]);
        WorkerInFlight = factory.CreateGauge("llm_worker_in_flight", "Requests the gateway has in flight on the worker.", ["worker"]);
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

    public Counter ConfigReloads { get; }

    public Gauge WorkerInFlight { get; }

    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) =>
        Registry.CollectAndExportAsTextAsync(destination, cancellationToken);
}
