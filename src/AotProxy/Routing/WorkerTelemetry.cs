using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Routing;

// The workers as routing sees them, all set at scrape time from the current worker set: routable
// workers per model, in-flight requests, the last good vLLM scrape, the breaker. The series of
// workers or models that are gone are dropped so dashboards don't show ghosts.
internal sealed class WorkerTelemetry
{
    private readonly CollectorRegistry _registry;
    private readonly Gauge _healthyWorkers;
    private readonly Gauge _inFlight;
    private readonly Gauge _slots;
    private readonly Gauge _running;
    private readonly Gauge _waiting;
    private readonly Gauge _kvCache;
    private readonly Gauge _breakerState;
    private readonly Counter _breakerFailures;
    private readonly Counter _pushBacks;

    public WorkerTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _healthyWorkers = factory.CreateGauge("llm_gateway_healthy_workers", "Routable workers per model.", ["model"]);
        _inFlight = factory.CreateGauge("llm_worker_in_flight", "Requests the gateway has in flight on the worker.", ["worker"]);
        _slots = factory.CreateGauge("llm_worker_slots", "Admission slots on the worker: max_concurrency, or what scheduler.adaptive_slots learned (compare llm_worker_in_flight).", ["worker"]);
        _running = factory.CreateGauge("llm_worker_running_requests", "vllm:num_requests_running from the worker's last good /metrics scrape.", ["worker"]);
        _waiting = factory.CreateGauge("llm_worker_waiting_requests", "vllm:num_requests_waiting from the worker's last good /metrics scrape.", ["worker"]);
        _kvCache = factory.CreateGauge("llm_worker_kv_cache_usage", "KV-cache usage (0..1) from the worker's last good /metrics scrape.", ["worker"]);
        _breakerState = factory.CreateGauge("llm_circuit_breaker_state", "Circuit breaker per worker: 0 closed, 1 open, 2 half-open.", ["worker"]);
        _breakerFailures = factory.CreateCounter("llm_circuit_breaker_failures_total", "Failures the worker's breaker counted (transport errors, 5xx, slow first bytes).", ["worker"]);
        _pushBacks = factory.CreateCounter("llm_worker_push_backs_total", "503 (queue full) and 429 answers of the worker: retried elsewhere when another worker could take the request; never a breaker failure.", ["worker", "status"]);
    }

    public void CollectFrom(GatewayState state) => _registry.AddBeforeCollectCallback(() => Collect(state.Current));

    private void Collect(GatewayView view)
    {
        var set = view.Workers;
        Func<string, bool> exists = name => set.Find(name) is not null;
        TelemetrySeries.Prune(_inFlight, exists);
        TelemetrySeries.Prune(_slots, exists);
        TelemetrySeries.Prune(_running, exists);
        TelemetrySeries.Prune(_waiting, exists);
        TelemetrySeries.Prune(_kvCache, exists);
        TelemetrySeries.Prune(_breakerState, exists);
        TelemetrySeries.Prune(_breakerFailures, exists);
        TelemetrySeries.Prune(_pushBacks, exists);

        var staleAfter = view.Config.Routing.StaleAfter;
        foreach (var worker in set.Workers)
        {
            var name = worker.Name;
            _inFlight.WithLabels(name).Set(worker.InFlight);
            _slots.WithLabels(name).Set(worker.Slots(view.Config.Scheduler, staleAfter));
            _breakerState.WithLabels(name).Set((int)worker.Breaker.State);
            _breakerFailures.WithLabels(name).IncTo(worker.Breaker.Failures);
            _pushBacks.WithLabels(name, "503").IncTo(worker.PushBacksWith(503));
            _pushBacks.WithLabels(name, "429").IncTo(worker.PushBacksWith(429));
            if (worker.IsFresh(staleAfter) && worker.Scraped is { } scraped)
            {
                _running.WithLabels(name).Set(scraped.Metrics.Running);
                _waiting.WithLabels(name).Set(scraped.Metrics.Waiting);
                _kvCache.WithLabels(name).Set(scraped.Metrics.KvCacheUsage);
            }
            else
            {
                // Stale gauges are no reading: drop the series rather than repeat an old value.
                _running.RemoveLabelled(name);
                _waiting.RemoveLabelled(name);
                _kvCache.RemoveLabelled(name);
            }
        }

        TelemetrySeries.Prune(_healthyWorkers, set.Pools.ContainsKey);
        foreach (var (model, pool) in set.Pools)
        {
            _healthyWorkers.WithLabels(model).Set(pool.Workers.Count(view.IsRoutable));
        }
    }
}
