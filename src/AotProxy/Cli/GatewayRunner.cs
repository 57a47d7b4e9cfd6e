using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Hosting;
using AotProxy.Ledger;
using AotProxy.Tenancy;
using Microsoft.Extensions.Logging;

namespace AotProxy.Cli;

// What `serve` and `demo` share: start the gateway, announce it, watch the file (if any), wait
// for SIGTERM, stop gracefully, exit 0 (1 when the usage ledger or the tenant store cannot be
// opened, the store conflicts with the file, or an address cannot be bound: one line on stderr that says why).
internal static class GatewayRunner
{
    public static async Task<int> RunAsync(ConfigStore store, bool watch, ILoggerFactory loggerFactory, Func<GatewayHost, Task>? onReady = null)
    {
        using var shutdown = new ShutdownSignal();
        GatewayHost host;
        try
        {
            host = await GatewayHost.StartAsync(store, loggerFactory, TimeProvider.System).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is LedgerUnavailableException or TenantStoreException or ListenFailedException)
        {
            Console.Error.WriteLine($"aotproxy: {ex.Message}");
            return 1;
        }

        await using var stopHost = host.ConfigureAwait(false);
        using var watcher = watch ? new ConfigWatcher(store, loggerFactory.CreateLogger("AotProxy.Configuration")) : null;

        // One parseable line on stdout: scripts and tests wait for it.
        Console.WriteLine($"aotproxy ready: listen={host.DataUri} admin={host.AdminUri} revision={store.Current.Revision}");
        if (onReady is not null)
        {
            await onReady(host).ConfigureAwait(false);
        }

        await shutdown.Task.ConfigureAwait(false);
        await host.StopAsync(store.Current.Server.ShutdownGrace).ConfigureAwait(false);
        return 0;
    }
}
