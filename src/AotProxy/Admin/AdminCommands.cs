using AotProxy.Configuration;
using AotProxy.Routing;
using Microsoft.Extensions.Logging;

namespace AotProxy.Admin;

// What the admin API changes: a config reload, a worker's drain, a breaker's reset.
internal sealed class AdminCommands(ConfigStore config, ILogger logger)
{
    // POST /api/config/reload. The reload reads and validates the file and rebuilds the worker
    // set: blocking work, on the thread pool, not the epoll thread (see AdminReports.UsageAsync).
    // ConfigStore still runs one at a time.
    public Task<ReloadStatus> ReloadAsync(CancellationToken cancellationToken) => Task.Run(config.Reload, cancellationToken);

    // POST /api/workers/{name}/drain | /api/workers/{name}/undrain
    public void SetDraining(WorkerState worker, bool drain)
    {
        worker.Draining = drain; // the worker tells admission what it offers now
        RoutingLog.DrainChanged(logger, worker.Name, drain ? "draining" : "undrained");
    }

    // POST /api/circuit-breaker/{name}/reset
    public void ResetBreaker(WorkerState worker)
    {
        worker.Breaker.Reset();
        RoutingLog.BreakerChanged(logger, worker.Name, BreakerState.Closed);
    }
}
