using System.Globalization;
using System.Net;
using AotProxy.Accounting;
using AotProxy.Admin;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Hosting;
using AotProxy.Http;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace AotProxy.Gateway;

// The running gateway: two raw Kestrel listeners (data plane, admin plane) over one config
// store, one worker registry and one upstream connection pool.
internal sealed class GatewayHost : IAsyncDisposable
{
    private readonly ConfigStore _config;
    private readonly WorkerRegistry _workers;
    private readonly TenantLimits _limits;
    private readonly HttpMessageInvoker _http;
    private readonly ModelDiscovery _discovery;
    private readonly WorkerMonitor _monitor;
    private readonly KestrelListener _data;
    private readonly KestrelListener _admin;
    private readonly KestrelListener? _h2c;
    private readonly ILogger _logger;
    private readonly GatewayMetrics _metrics;
    private readonly ITimer _scavenger;
    private readonly ITimer _capacity;
    private readonly ITimer _compaction;
    private readonly LedgerWriter? _ledger;

    // 1 s: the watcher's debounce (250 ms) and a POST /api/config/reload right after an edit
    // both fit in it.
    private static readonly TimeSpan CompactionDelay = TimeSpan.FromSeconds(1);

    private GatewayHost(ConfigStore config, WorkerRegistry workers, TenantLimits limits, AdmissionController admissions, HttpMessageInvoker http, ModelDiscovery discovery, WorkerMonitor monitor, KestrelListener data, KestrelListener admin, KestrelListener? h2c, LedgerWriter? ledger, GatewayMetrics metrics, ILogger logger)
    {
        _ledger = ledger;
        _h2c = h2c;
        _config = config;
        _workers = workers;
        _limits = limits;
        _http = http;
        _discovery = discovery;
        _monitor = monitor;
        _data = data;
        _admin = admin;
        _logger = logger;
        _metrics = metrics;
        // Idle upstream connections are closed before a worker's keep-alive timeout ends them.
        _scavenger = TimeProvider.System.CreateTimer(static state => ((WorkerRegistry)state!).ScavengeIdleConnections(), workers, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        // Slots follow health, breakers and draining, which change without any request: 250 ms
        // bounds how long a waiter sits next to the capacity of a worker that just came back.
        _capacity = TimeProvider.System.CreateTimer(_ => admissions.Refresh(workers.Current, config.Current), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        // Also once after startup: reading the file left garbage of the same kind.
        _compaction = TimeProvider.System.CreateTimer(_ => Compact(), null, CompactionDelay, Timeout.InfiniteTimeSpan);
        _config.Changed += OnConfigChanged;
        _config.Reloaded += OnReloaded;
    }

    public Uri DataUri => _data.BaseUri;

    public Uri AdminUri => _admin.BaseUri;

    public Uri? H2cUri => _h2c?.BaseUri;

    public WorkerRegistry Workers => _workers;

    // null when ledger.path = "".
    public LedgerWriter? Ledger => _ledger;

    // Throws LedgerUnavailableException when the ledger cannot be opened, ListenFailedException
    // when an address cannot be bound: nothing is left running then.
    public static async Task<GatewayHost> StartAsync(ConfigStore config, ILoggerFactory loggerFactory, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var logger = loggerFactory.CreateLogger("AotProxy");
        var snapshot = config.Current;
        var metrics = new GatewayMetrics();
        var usage = new UsageRecorder(metrics, time);

        // First: a gateway that cannot record usage must fail before it serves. The ledger's
        // totals seed the monthly counters and the budgets' spend, so a restart loses nothing.
        LedgerWriter? ledger = null;
        IReadOnlyList<UsageTotals> totals = [];
        if (snapshot.Ledger.Enabled)
        {
            ledger = LedgerWriter.Open(snapshot.Ledger, time, loggerFactory.CreateLogger("AotProxy.Ledger"), out var read);
            totals = read;
            usage.Seed(totals, time.GetUtcNow());
        }

        var workers = new WorkerRegistry(time);
        workers.Apply(snapshot);
        var http = UpstreamClient.Create(() => config.Current.Forwarding.ConnectTimeout);
        var discovery = new ModelDiscovery(workers, http, loggerFactory.CreateLogger("AotProxy.Routing"));
        discovery.Start();
        var routingLogger = loggerFactory.CreateLogger("AotProxy.Routing");
        var monitor = new WorkerMonitor(workers, config, http, time, routingLogger);
        monitor.Start();

        var limits = new TenantLimits(time);
        limits.Apply(snapshot);
        limits.Seed(totals);
        var router = new Router(time, Random.Shared, routingLogger);
        var admissions = new AdmissionController(new WaiterPool(time, capacity: 1024), metrics, time, router);
        var data = DataPlaneHandler.Create(config, workers, admissions, router, limits, usage, metrics, ledger, time, loggerFactory.CreateLogger("AotProxy.Http"));
        var admin = new AdminHandler(config, workers, admissions, limits, usage, metrics, ledger, time, loggerFactory.CreateLogger("AotProxy.Admin"));

        KestrelListener? dataListener = null;
        KestrelListener? adminListener = null;
        KestrelListener? h2cListener = null;
        try
        {
            var server = snapshot.Server;
            dataListener = await ListenAsync(server.Listen, "server.listen", data.HandleAsync, HttpProtocols.Http1, o => DataPlaneLimits(o, server), loggerFactory, cancellationToken).ConfigureAwait(false);
            adminListener = await ListenAsync(server.AdminListen, "server.admin_listen", admin.HandleAsync, HttpProtocols.Http1, null, loggerFactory, cancellationToken).ConfigureAwait(false);
            h2cListener = server.H2cListen is { } h2c
                ? await ListenAsync(h2c, "server.h2c_listen", data.HandleAsync, HttpProtocols.Http2, o => DataPlaneLimits(o, server), loggerFactory, cancellationToken).ConfigureAwait(false)
                : null;
        }
        catch (ListenFailedException)
        {
            // Nothing has been served: stop what started, so that the caller can say why in one
            // line and exit (the ledger is closed with nothing in it).
            foreach (var listener in new[] { dataListener, adminListener })
            {
                if (listener is not null)
                {
                    await listener.DisposeAsync().ConfigureAwait(false);
                }
            }

            await discovery.DisposeAsync().ConfigureAwait(false);
            await monitor.DisposeAsync().ConfigureAwait(false);
            http.Dispose();
            if (ledger is not null)
            {
                await ledger.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        var host = new GatewayHost(config, workers, limits, admissions, http, discovery, monitor, dataListener!, adminListener!, h2cListener, ledger, metrics, logger);
        GatewayLog.Listening(logger, host.DataUri, host.AdminUri, snapshot.Revision);
        return host;
    }

    private static async Task<KestrelListener> ListenAsync(IPEndPoint endPoint, string setting, RequestDelegate handler, HttpProtocols protocols, Action<KestrelServerOptions>? configure, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        try
        {
            return await KestrelListener.StartAsync(endPoint, handler, loggerFactory, configure, protocols, cancellationToken).ConfigureAwait(false);
        }
        catch (ListenFailedException ex)
        {
            throw ex.For(setting);
        }
    }

    // The client-facing caps of the OpenAI API's listeners (the admin plane keeps Kestrel's).
    // Read when the listener binds: a reload that changes them says a restart is needed.
    private static void DataPlaneLimits(KestrelServerOptions options, ServerModel server)
    {
        options.Limits.MaxConcurrentConnections = server.MaxConnections > 0 ? server.MaxConnections : null;
        options.Limits.MaxRequestHeadersTotalSize = server.MaxHeaderBytes;
        // HTTP/2 checks each field on its own too (16 KiB by default): one field may use it all,
        // as over HTTP/1.1.
        options.Limits.Http2.MaxRequestHeaderFieldSize = Math.Max(server.MaxHeaderBytes, 16 * 1024);
    }

    // Stop accepting; in-flight requests and streams get `grace` to finish, then are cut.
    public async Task StopAsync(TimeSpan grace)
    {
        GatewayLog.ShuttingDown(_logger, grace);
        using var deadline = new CancellationTokenSource(grace);
        await Task.WhenAll(_data.StopAsync(deadline.Token), _h2c?.StopAsync(deadline.Token) ?? Task.CompletedTask).ConfigureAwait(false);
        await _admin.StopAsync(deadline.Token).ConfigureAwait(false);
        GatewayLog.Stopped(_logger);
    }

    public async ValueTask DisposeAsync()
    {
        _config.Changed -= OnConfigChanged;
        _config.Reloaded -= OnReloaded;
        await _scavenger.DisposeAsync().ConfigureAwait(false);
        await _capacity.DisposeAsync().ConfigureAwait(false);
        await _compaction.DisposeAsync().ConfigureAwait(false);
        await _data.DisposeAsync().ConfigureAwait(false);
        if (_h2c is not null)
        {
            await _h2c.DisposeAsync().ConfigureAwait(false);
        }

        await _admin.DisposeAsync().ConfigureAwait(false);
        await _discovery.DisposeAsync().ConfigureAwait(false);
        await _monitor.DisposeAsync().ConfigureAwait(false);
        _http.Dispose();
        if (_ledger is not null)
        {
            // After the listeners: the last requests' rows are queued by now, and go to disk here.
            await _ledger.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var worker in _workers.Current.Workers)
        {
            await worker.Connections.CloseAsync().ConfigureAwait(false);
        }
    }

    private void OnReloaded(ReloadStatus status) => _metrics.ConfigReloads.WithLabels(status.Result).Inc();

    private void OnConfigChanged(GatewaySnapshot previous, GatewaySnapshot current)
    {
        _workers.Apply(current);
        _limits.Apply(current);
        if (!previous.Server.Listen.Equals(current.Server.Listen))
        {
            GatewayLog.RestartNeeded(_logger, "server.listen", previous.Server.Listen.ToString(), current.Server.Listen.ToString());
        }

        if (!previous.Server.AdminListen.Equals(current.Server.AdminListen))
        {
            GatewayLog.RestartNeeded(_logger, "server.admin_listen", previous.Server.AdminListen.ToString(), current.Server.AdminListen.ToString());
        }

        if (previous.Server.MaxConnections != current.Server.MaxConnections)
        {
            GatewayLog.RestartNeeded(_logger, "server.max_connections", previous.Server.MaxConnections.ToString(CultureInfo.InvariantCulture), current.Server.MaxConnections.ToString(CultureInfo.InvariantCulture));
        }

        if (previous.Server.MaxHeaderBytes != current.Server.MaxHeaderBytes)
        {
            GatewayLog.RestartNeeded(_logger, "server.max_header_bytes", previous.Server.MaxHeaderBytes.ToString(CultureInfo.InvariantCulture), current.Server.MaxHeaderBytes.ToString(CultureInfo.InvariantCulture));
        }

        // The writer holds its file open: a new path would split the ledger mid-run, so it takes a restart.
        if (previous.Ledger.Path != current.Ledger.Path)
        {
            GatewayLog.RestartNeeded(_logger, "ledger.path", previous.Ledger.Path, current.Ledger.Path);
        }

        GatewayLog.Applied(_logger, current.Revision, current.Workers.Length, current.Tenants.Length);
        _compaction.Change(CompactionDelay, Timeout.InfiniteTimeSpan);
    }

    // One full, compacting collection after the config is loaded (startup, reload), which gives
    // the free memory back to the OS: a replaced snapshot, its limit state and what reading the
    // file allocated sit in gen2, which a gateway that allocates next to nothing per request may
    // not collect for hours (100k tenants, then a revert to one: RSS stayed at ~270 MB without
    // it, 29 MB with it; perf/RESULTS.md has the figures and the pause, ~1-6 ms for a small
    // config, ~300 ms with 100k tenants). CompactionDelay after the last applied reload, on a
    // timer thread: by then the reload's own stack no longer holds the old snapshot, and a
    // burst of reloads costs one collection.
    private void Compact()
    {
        var heap = GC.GetTotalMemory(forceFullCollection: false);
        var paused = GC.GetTotalPauseDuration();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var pause = GC.GetTotalPauseDuration() - paused;
        var after = GC.GetTotalMemory(forceFullCollection: false);
        // A pause that clients could notice (50 ms) is worth a line; a small config's 1-6 ms is not.
        var level = pause >= TimeSpan.FromMilliseconds(50) ? LogLevel.Information : LogLevel.Debug;
        GatewayLog.Compacted(_logger, level, heap >> 20, after >> 20, pause.TotalMilliseconds);
    }
}
