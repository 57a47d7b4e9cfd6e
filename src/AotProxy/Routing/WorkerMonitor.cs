using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Threading;
using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

// The background side of routing: every routing.metrics_interval it scrapes each worker's
// /metrics into its state, and every health.interval it runs the active health check. Each pass
// probes all workers at once, each bounded by its timeout (shorter than the interval), so one
// hanging worker delays nobody. Intervals, timeouts and the workers are read from the current
// view on every pass, so a reload applies at the next one. A health check that turned, or (with
// scheduler.adaptive_slots) a scrape, changes the slots the workers offer: admission hears it
// through `capacity` at the end of the pass.
internal sealed class WorkerMonitor(GatewayState state, HttpClient http, TimeProvider time, CapacitySignal capacity, ILogger logger) : IAsyncDisposable
{
    private readonly BackgroundLoop _loops = new();

    public void Start()
    {
        _loops.Start(stop => EveryAsync(s => s.Routing.MetricsInterval, ScrapeAllAsync, stop));
        _loops.Start(stop => EveryAsync(s => s.Health.Interval, CheckAllAsync, stop));
    }

    public async ValueTask DisposeAsync()
    {
        await _loops.DisposeAsync().ConfigureAwait(false);
    }

    public async Task ScrapeAllAsync(GatewayView view, CancellationToken cancellationToken)
    {
        var snapshot = view.Config;
        await Task.WhenAll(view.Workers.Workers.Select(w => ScrapeAsync(w, snapshot, cancellationToken))).ConfigureAwait(false);
        if (snapshot.Scheduler.AdaptiveSlots)
        {
            capacity.Changed(); // each fresh scrape may move a worker's slots; a stale one resets them
        }
    }

    public async Task CheckAllAsync(GatewayView view, CancellationToken cancellationToken)
    {
        var health = view.Config.Health;
        var turned = await Task.WhenAll(view.Workers.Workers.Select(w => CheckAsync(w, health, cancellationToken))).ConfigureAwait(false);
        if (turned.Contains(true))
        {
            capacity.Changed();
        }
    }

    private async Task EveryAsync(Func<GatewaySnapshot, TimeSpan> interval, Func<GatewayView, CancellationToken, Task> pass, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = time.GetTimestamp();
            await pass(state.Current, cancellationToken).ConfigureAwait(false);
            // Read again, not kept in a local: across the wait below it would keep a snapshot
            // that a reload replaced alive until the next pass (100k tenants: ~100 MB).
            var rest = interval(state.Current.Config) - time.GetElapsedTime(started);
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest, time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ScrapeAsync(WorkerState worker, GatewaySnapshot snapshot, CancellationToken cancellationToken)
    {
        var result = await WorkerScrape.ScrapeAsync(http, new Uri(worker.Model.Url, "metrics"), worker.MetricsFilter, snapshot.Routing.MetricsTimeout, cancellationToken).ConfigureAwait(false);
        if (result.HasLoad)
        {
            worker.OnScraped(result.Metrics, snapshot.Scheduler, snapshot.Routing.StaleAfter, snapshot.Routing.LearningRate);
        }
        else
        {
            var reason = result.Outcome == ScrapeOutcome.HttpStatus ? $"HTTP {result.StatusCode}" : EnumNames.Snake(result.Outcome);
            if (worker.ScrapeStatus != reason)
            {
                RoutingLog.ScrapeFailed(logger, worker.Name, reason);
            }

            worker.OnScrapeFailed(reason);
        }
    }

    // Whether the worker's health turned.
    private async Task<bool> CheckAsync(WorkerState worker, HealthModel health, CancellationToken cancellationToken)
    {
        var url = new Uri(worker.Model.Url, health.Path.TrimStart('/'));
        var probe = await HealthProbe.ProbeAsync(http, url, health.Timeout, cancellationToken).ConfigureAwait(false);
        if (worker.Health.Record(probe.IsHealthy, health, time.GetUtcNow()))
        {
            var detail = probe.IsHealthy ? "answered"
                : probe.Outcome == HealthOutcome.HttpStatus ? $"HTTP {probe.StatusCode}"
                : EnumNames.Snake(probe.Outcome);
            RoutingLog.HealthChanged(logger, worker.Name, worker.Health.State, detail);
            return true;
        }

        return false;
    }
}
