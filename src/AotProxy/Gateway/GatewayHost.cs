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
    private readonly LedgerWriter? _ledger;

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
        _config.Changed += OnConfigChanged;
        _config.Reloaded += OnReloaded;
    }

    public Uri DataUri => _data.BaseUri;

    public Uri AdminUri => _admin.BaseUri;

    public Uri? H2cUri => _h2c?.BaseUri;

    public WorkerRegistry Workers => _workers;

    // null when ledger.path = "".
    public LedgerWriter? Ledger => _ledger;

    // Throws LedgerUnavailableException when the ledger cannot be opened: nothing has started then.
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

        var dataListener = await KestrelListener.StartAsync(snapshot.Server.Listen, data.HandleAsync, loggerFactory, cancellationToken: cancellationToken).ConfigureAwait(false);
        var adminListener = await KestrelListener.StartAsync(snapshot.Server.AdminListen, admin.HandleAsync, loggerFactory, cancellationToken: cancellationToken).ConfigureAwait(false);
        var h2cListener = snapshot.Server.H2cListen is { } h2c
            ? await KestrelListener.StartAsync(h2c, data.HandleAsync, loggerFactory, protocols: HttpProtocols.Http2, cancellationToken: cancellationToken).ConfigureAwait(false)
            : null;
        var host = new GatewayHost(config, workers, limits, admissions, http, discovery, monitor, dataListener, adminListener, h2cListener, ledger, metrics, logger);
        GatewayLog.Listening(logger, host.DataUri, host.AdminUri, snapshot.Revision);
        return host;
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

        // The writer holds its file open: a new path would split the ledger mid-run, so it takes a restart.
        if (previous.Ledger.Path != current.Ledger.Path)
        {
            GatewayLog.RestartNeeded(_logger, "ledger.path", previous.Ledger.Path, current.Ledger.Path);
        }

        GatewayLog.Applied(_logger, current.Revision, current.Workers.Length, current.Tenants.Length);
    }
}
