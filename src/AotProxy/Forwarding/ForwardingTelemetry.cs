using System.Collections.Concurrent;
using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Forwarding;

// The forwarding stage's metrics: attempts in flight upstream, and retries by the worker that
// failed them (their series go with the worker).
internal sealed class ForwardingTelemetry
{
    private readonly ConcurrentDictionary<string, Counter.Child> _retries = new(StringComparer.Ordinal);
    private readonly Gauge _activeRequests;
    private readonly Counter _retriesTotal;
    private readonly CollectorRegistry _registry;

    public ForwardingTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _activeRequests = factory.CreateGauge("llm_gateway_active_requests", "Requests being proxied right now.");
        _retriesTotal = factory.CreateCounter("llm_gateway_retries_total", "Requests retried on another worker, by the worker that failed them.", ["worker"]);
    }

    // What /api/status shows as active_requests.
    public long ActiveRequests => (long)_activeRequests.Value;

    public void OnAttemptStart() => _activeRequests.Inc();

    public void OnAttemptEnd() => _activeRequests.Dec();

    public void CountRetry(string worker) =>
        TelemetrySeries.Child(_retries, _retriesTotal, worker).Inc();

    // At each scrape: the series of workers that are gone are dropped, so dashboards don't show ghosts.
    public void CollectFrom(GatewayState state) => _registry.AddBeforeCollectCallback(() =>
    {
        var set = state.Current.Workers;
        Func<string, bool> exists = name => set.Find(name) is not null;
        TelemetrySeries.Prune(_retriesTotal, exists);
        TelemetrySeries.Prune(_retries, exists);
    });
}
