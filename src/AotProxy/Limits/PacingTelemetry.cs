using System.Collections.Concurrent;
using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Limits;

// Upstream pacing (workers with rpm/tpm, UpstreamPacer). The counters mirror the pacers' own and
// are set at scrape time; only the wait histogram is observed on the request's path.
internal sealed class PacingTelemetry
{
    private readonly ConcurrentDictionary<string, Histogram.Child> _waits = new(StringComparer.Ordinal);
    private readonly CollectorRegistry _registry;
    private readonly Counter _pacedRequests;
    private readonly Counter _pacingWaits;
    private readonly Histogram _pacingWait;
    private readonly Counter _pacingTimeouts;
    private readonly Gauge _windowRequests;
    private readonly Gauge _windowTokens;

    public PacingTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _pacedRequests = factory.CreateCounter("llm_worker_paced_requests_total", "Requests the worker's upstream pacing (rpm/tpm) let go, at once or after waiting.", ["worker"]);
        _pacingWaits = factory.CreateCounter("llm_worker_pacing_waits_total", "Requests that had to wait for the worker's pacing, granted or not.", ["worker"]);
        _pacingWait = factory.CreateHistogram("llm_worker_pacing_wait_seconds", "Time a request waited for the worker's pacing, granted or not (requests that went at once are not observed).", ["worker"], new HistogramConfiguration { Buckets = TelemetrySeries.LatencyBuckets });
        _pacingTimeouts = factory.CreateCounter("llm_worker_pacing_timeouts_total", "Requests refused with 503 because the worker's pacing gave no turn within max_wait.", ["worker"]);
        _windowRequests = factory.CreateGauge("llm_worker_pacing_window_requests", "Requests started on the paced worker in the last 60 s.", ["worker"]);
        _windowTokens = factory.CreateGauge("llm_worker_pacing_window_tokens", "Tokens reserved (prompt estimate + max_tokens) on the paced worker in the last 60 s.", ["worker"]);
    }

    public void ObserveWait(string worker, TimeSpan waited) =>
        TelemetrySeries.Child(_waits, _pacingWait, worker).Observe(waited.TotalSeconds);

    public void CollectFrom(GatewayState state) => _registry.AddBeforeCollectCallback(() =>
    {
        var set = state.Current.Workers;
        Func<string, bool> exists = name => set.Find(name) is not null;
        TelemetrySeries.Prune(_pacedRequests, exists);
        TelemetrySeries.Prune(_pacingWaits, exists);
        TelemetrySeries.Prune(_pacingWait, exists);
        TelemetrySeries.Prune(_pacingTimeouts, exists);
        TelemetrySeries.Prune(_windowRequests, exists);
        TelemetrySeries.Prune(_windowTokens, exists);
        TelemetrySeries.Prune(_waits, exists);
        foreach (var worker in set.Workers)
        {
            var name = worker.Name;
            if (worker.Pacer is { } pacer)
            {
                var (requests, tokens) = pacer.WindowUsage();
                _pacedRequests.WithLabels(name).IncTo(pacer.Granted);
                _pacingWaits.WithLabels(name).IncTo(pacer.Waits);
                _pacingTimeouts.WithLabels(name).IncTo(pacer.Timeouts);
                _windowRequests.WithLabels(name).Set(requests);
                _windowTokens.WithLabels(name).Set(tokens);
            }
            else
            {
                _windowRequests.RemoveLabelled(name);
                _windowTokens.RemoveLabelled(name);
            }
        }
    });
}
