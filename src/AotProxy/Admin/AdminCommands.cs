using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Routing;
using Microsoft.Extensions.Logging;

namespace AotProxy.Admin;

// What the admin API changes: a config reload, a worker's drain, a breaker's reset.
// sharedSlots: with [cluster], where a drain goes to every replica.
internal sealed class AdminCommands(ConfigStore config, ILogger logger, SharedWorkerSlots? sharedSlots = null)
{
    // POST /api/config/reload. The reload reads and validates the file and rebuilds the worker
    // set: blocking work, on the thread pool, not the epoll thread (see AdminReports.UsageAsync).
    // ConfigStore still runs one at a time.
    public Task<ReloadStatus> ReloadAsync(CancellationToken cancellationToken) => Task.Run(config.Reload, cancellationToken);

    // POST /api/workers/{name}/drain | /api/workers/{name}/undrain
    // Here at once; with [cluster] on every replica too (a store that does not take it: here only,
    // logged, until a heartbeat finds the store back and applies what it holds).
    public async Task SetDrainingAsync(WorkerState worker, bool drain)
    {
        worker.Draining = drain; // the worker tells admission what it offers now
        RoutingLog.DrainChanged(logger, worker.Name, drain ? "draining" : "undrained");
        if (sharedSlots is not null && !await sharedSlots.ShareDrainAsync(worker.Name, drain).ConfigureAwait(false))
        {
            ClusterLog.DrainNotShared(logger, worker.Name);
        }
    }

    // POST /api/circuit-breaker/{name}/reset
    public void ResetBreaker(WorkerState worker)
    {
        worker.Breaker.Reset();
        worker.Warmed(); // the operator vouches for it: no warm-up wait after the breaker it opened
        RoutingLog.BreakerChanged(logger, worker.Name, BreakerState.Closed);
    }
}
