using System.Net;
using AotProxy.Accounting;
using AotProxy.Admin;
using AotProxy.Admission;
using AotProxy.Caching;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Hosting;
using AotProxy.Hosting.Epoll;
using AotProxy.Hosting.Parking;
using AotProxy.Http;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tenancy;
using AotProxy.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace AotProxy.Gateway;

// The running gateway: two raw Kestrel listeners (data plane, admin plane) over one config
// store, the state it is applied to (GatewayState) and one upstream connection pool.
internal sealed class GatewayHost : IAsyncDisposable
{
    // Idle upstream connections are closed before a worker's keep-alive timeout ends them.
    private static readonly TimeSpan ScavengeInterval = TimeSpan.FromSeconds(1);

    private readonly GatewayState _state;
    private readonly HttpMessageInvoker _http;
    private readonly ModelDiscovery _discovery;
    private readonly WorkerMonitor _monitor;
    private readonly KestrelListener _data;
    private readonly KestrelListener _admin;
    private readonly KestrelListener? _h2c;
    private readonly ILogger _logger;
    private readonly ConfigStore _config;
    private readonly GatewayTelemetry _telemetry;
    private readonly HeapCompaction _compaction;
    private readonly ITimer _scavenger;
    private readonly LedgerWriter? _ledger;
    private readonly ClusterMembership? _cluster;
    private readonly TraceExport _tracing;
    private TenantDirectory? _tenants;
    private ParkedCollection? _parkedCollection;
    private AdminHandler? _adminHandler;
    private AdminChanges? _changes;
    private SharedWorkerSlots? _sharedSlots;
    private SharedTenantLimits? _sharedLimits;
    private SharedFairShare? _fairShare;
    private EpollClientLoops? _upstreamLoops;

    private GatewayHost(ConfigStore config, GatewayState state, HttpMessageInvoker http, ModelDiscovery discovery, WorkerMonitor monitor, KestrelListener data, KestrelListener admin, KestrelListener? h2c, LedgerWriter? ledger, ClusterMembership? cluster, GatewayTelemetry telemetry, HeapCompaction compaction, TraceExport tracing, TimeProvider time, ILogger logger)
    {
        _tracing = tracing;
        _ledger = ledger;
        _cluster = cluster;
        _h2c = h2c;
        _config = config;
        _state = state;
        _http = http;
        _discovery = discovery;
        _monitor = monitor;
        _data = data;
        _admin = admin;
        _logger = logger;
        _telemetry = telemetry;
        _compaction = compaction;
        _scavenger = time.CreateTimer(static state => ((GatewayState)state!).Current.Workers.ScavengeIdleConnections(), state, ScavengeInterval, ScavengeInterval);
        _config.Reloaded += OnReloaded;
    }

    public Uri DataUri => _data.BaseUri;

    public Uri AdminUri => _admin.BaseUri;

    public Uri? H2cUri => _h2c?.BaseUri;

    // What requests run on now: the config and the workers.
    public GatewayState State => _state;

    // null when ledger.path = "".
    public LedgerWriter? Ledger => _ledger;

    // The tenant store's tenants and keys; null when ledger.path = "" (no file to keep them in).
    public TenantDirectory? Tenants => _tenants;

    // Throws LedgerUnavailableException when the ledger cannot be opened, TenantStoreException when
    // the tenant store cannot be read or conflicts with the file, ListenFailedException when an
    // address cannot be bound: nothing is left running then.
    public static async Task<GatewayHost> StartAsync(ConfigStore config, ILoggerFactory loggerFactory, TimeProvider time, CancellationToken cancellationToken = default)
    {
        var logger = loggerFactory.CreateLogger("AotProxy");
        var snapshot = config.Current;
        var telemetry = new GatewayTelemetry(time);
        var usage = new UsageRecorder(telemetry.Usage, time);

        // First: a gateway that cannot record usage must fail before it serves. The ledger's
        // totals seed the monthly counters and the budgets' spend, so a restart loses nothing.
        LedgerWriter? ledger = null;
        IReadOnlyList<UsageTotals> totals = [];
        if (snapshot.Ledger.Enabled)
        {
            ledger = LedgerWriter.Open(snapshot.Ledger, time, loggerFactory.CreateLogger("AotProxy.Ledger"), out var read);
            totals = read;
            if (snapshot.Store.Enabled)
            {
                // [store]: the rows go on to the shared ledger, and seed from it without [cluster]. With
                // [cluster], each replica seeds the shared budgets with its own rows (its file), and
                // the gone replicas' files are seeded from the shared ledger once per epoch
                // (StoreResync); the fleet's totals from each would count them N times.
                totals = await ledger.ShareAsync(snapshot.Store, seed: !snapshot.Cluster.Enabled, loggerFactory.CreateLogger("AotProxy.Ledger"), cancellationToken).ConfigureAwait(false) ?? totals;
            }

            usage.Seed(totals, time.GetUtcNow());
        }

        // The tenant store (runtime tenants and keys) lives in the ledger's file, or in the shared
        // PostgreSQL when [store] postgres_url is set: merged into the snapshot the state starts
        // on, and into every reload's (TenantDirectory.ApplyFile).
        TenantDirectory? tenants = null;
        if (ledger is not null)
        {
            ITenantStore? store = null;
            try
            {
                store = snapshot.Store.Postgres is { } postgres ? PostgresTenantStore.Open(postgres) : SqliteTenantStore.Open(snapshot.Ledger.Path);
                tenants = new TenantDirectory(store, snapshot, time, loggerFactory.CreateLogger("AotProxy.Tenancy"));
                snapshot = tenants.Initial();
            }
            catch (TenantStoreException)
            {
                if (tenants is not null)
                {
                    await tenants.DisposeAsync().ConfigureAwait(false);
                }
                else
                {
                    store?.Dispose();
                }

                await ledger.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        // Capacity that changes between reloads (health, breakers, drains) reaches admission
        // through this signal; a reload through GatewayState, which then publishes its view.
        var capacity = new CapacitySignal(time);
        var routingLogger = loggerFactory.CreateLogger("AotProxy.Routing");
        var limits = new TenantLimits(time);
        limits.Seed(totals);
        var router = new Router(time, Random.Shared, routingLogger);
        var admissions = new AdmissionController(new WaiterPool(time, capacity: 1024), telemetry.Admission, time, router, capacity);
        var compaction = new HeapCompaction(time, logger);
        // server.transport = "epoll": the workers' plain-HTTP connections join the epoll loops too.
        var upstreamLoops = snapshot.Server.Transport == ListenerTransport.Epoll ? new EpollClientLoops() : null;
        var state = new GatewayState(snapshot, new WorkerRegistry(time, capacity, warmsUp: true, upstreamLoops), limits, admissions, new ResponseCache(time), compaction, logger);
        if (tenants is null)
        {
            config.AppliesTo(state.Apply);
        }
        else
        {
            config.Check = tenants.Conflicts;
            config.AppliesTo(tenants.ApplyFile);
            tenants.AppliesTo(state.Apply);
        }

        var http = UpstreamClient.Create(() => state.Current.Config.Forwarding.ConnectTimeout);
        var discovery = new ModelDiscovery(state, http, time, routingLogger);
        discovery.Start();
        var monitor = new WorkerMonitor(state, http, time, capacity, routingLogger);
        // [routing] warmup: the first workers answer their warm-up before the gateway says it is
        // ready, so a client that sends at once finds them routable (one that is down, or whose
        // models are not discovered yet, is warmed by the monitor's passes later).
        await monitor.WarmUpAllAsync(state.Current, cancellationToken).ConfigureAwait(false);
        monitor.Start();

        // [cluster]: read at startup (a reload that changes it says a restart is needed); it
        // starts beating once the data plane is bound, whose port names the replica by default.
        // Every tenant limit is then shared through its connection (SharedTenantLimits), each
        // worker's max_concurrency (SharedWorkerSlots), and the fair-share counters (SharedFairShare).
        var cluster = snapshot.Cluster.Enabled
            ? new ClusterMembership(snapshot.Cluster, () => state.Current.Config, () => telemetry.Forwarding.ActiveRequests, time, loggerFactory.CreateLogger("AotProxy.Cluster"))
            : null;
        var fairShare = cluster is null ? null : new SharedFairShare(() => cluster.Connection, () => cluster.Name, SharedFairShare.Interval, time);
        if (fairShare is not null)
        {
            admissions.ShareFairness(fairShare);
        }

        var sharedLimits = cluster is null ? null : SharedLimits(cluster, fairShare!, limits, ledger?.Shipper, telemetry, time, loggerFactory.CreateLogger("AotProxy.Cluster"));
        var sharedSlots = cluster is null ? null : new SharedWorkerSlots(() => cluster.Connection, () => cluster.Name, () => cluster.Current.Members.Length, () => state.Current.Workers.Workers, () => state.Current.Config.CircuitBreaker, snapshot.Cluster.Heartbeat, time, capacity);
        if (sharedSlots is not null)
        {
            sharedSlots.Victims = admissions; // a want on another replica may preempt a request here
        }

        if (sharedLimits?.StoreDown is { } storeDown && sharedSlots is not null)
        {
            storeDown.Held.Workers = () => sharedSlots.Workers; // re-seeded with the tenants' parts
        }

        var data = DataPlaneHandler.Create(state, admissions, router, limits, usage, telemetry, ledger, time, loggerFactory.CreateLogger("AotProxy.Http"), sharedLimits, sharedSlots);
        telemetry.CollectFrom(state, admissions, limits, ledger);
        // The live console's streams hear of breakers, drains and health through the capacity
        // signal, of reloads (watcher or API) through OnReloaded, of the API's writes from the handler.
        var changes = new AdminChanges();
        capacity.Watch(changes.Pulse);
        var admin = new AdminHandler(config, state, admissions, limits, usage, telemetry, ledger, cluster, time, loggerFactory.CreateLogger("AotProxy.Admin"), sharedSlots, tenants, changes);
        admin.Start();

        KestrelListener? dataListener = null;
        KestrelListener? adminListener = null;
        KestrelListener? h2cListener = null;
        ParkedCollection? parkedCollection = null;
        try
        {
            var server = snapshot.Server;
            // server.park_idle_after, read when the listener binds (a reload says a restart is needed).
            var parking = server.ParkIdleAfter > TimeSpan.Zero ? new ConnectionParking(server.ParkIdleAfter) : null;
            if (parking is not null)
            {
                parkedCollection = new ParkedCollection(() => parking.Parks, () => telemetry.Forwarding.ActiveRequests, static () => GC.GetTotalAllocatedBytes(precise: false), HeapCompaction.CompactNow, time, logger);
                telemetry.Connections.CollectFrom(parking, parkedCollection);
            }

            var dataPlane = new ListenerOptions { Transport = server.Transport, Configure = o => DataPlaneLimits(o, server) };
            dataListener = await ListenAsync(server.Listen, "server.listen", data.HandleAsync, dataPlane with { Parking = parking }, loggerFactory, cancellationToken).ConfigureAwait(false);
            // The admin plane stays on sockets: server.transport is for the OpenAI API's hot path.
            adminListener = await ListenAsync(server.AdminListen, "server.admin_listen", admin.HandleAsync, ListenerOptions.Default, loggerFactory, cancellationToken).ConfigureAwait(false);
            h2cListener = server.H2cListen is { } h2c
                ? await ListenAsync(h2c, "server.h2c_listen", data.HandleAsync, dataPlane with { Protocols = HttpProtocols.Http2 }, loggerFactory, cancellationToken).ConfigureAwait(false)
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

            await admin.DisposeAsync().ConfigureAwait(false);
            await discovery.DisposeAsync().ConfigureAwait(false);
            await monitor.DisposeAsync().ConfigureAwait(false);
            await compaction.DisposeAsync().ConfigureAwait(false);
            if (parkedCollection is not null)
            {
                await parkedCollection.DisposeAsync().ConfigureAwait(false);
            }

            http.Dispose();
            if (tenants is not null)
            {
                await tenants.DisposeAsync().ConfigureAwait(false);
            }

            if (ledger is not null)
            {
                await ledger.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        // [telemetry] otlp_endpoint: spans from the first request on; each reload applies its own.
        var tracing = new TraceExport(telemetry.Tracing, logger);
        tracing.Apply(snapshot.Telemetry);
        var host = new GatewayHost(config, state, http, discovery, monitor, dataListener!, adminListener!, h2cListener, ledger, cluster, telemetry, compaction, tracing, time, logger);
        host._adminHandler = admin;
        host._upstreamLoops = upstreamLoops;
        host._changes = changes;
        host._tenants = tenants;
        host._parkedCollection = parkedCollection;
        cluster?.Start(host.DataUri.Port);
        host._sharedSlots = sharedSlots;
        sharedSlots?.Start();
        host._sharedLimits = sharedLimits;
        sharedLimits?.Start();
        host._fairShare = fairShare;
        fairShare?.Start();
        GatewayLog.Listening(logger, host.DataUri, host.AdminUri, snapshot.Revision);
        return host;
    }

    // A listener that cannot bind names its setting.
    private static async Task<KestrelListener> ListenAsync(IPEndPoint endPoint, string setting, RequestDelegate handler, ListenerOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        try
        {
            return await KestrelListener.StartAsync(endPoint, handler, loggerFactory, options, cancellationToken).ConfigureAwait(false);
        }
        catch (ListenFailedException ex)
        {
            throw ex.For(setting);
        }
    }

    // The tenants' fleet-wide limits, with [cluster] store_down (decisions while the store does
    // not answer), the resync after it (with [store], seeding the budgets from the shared ledger
    // too) and the cluster's metrics (fair share's deferred grants among them): a lone gateway
    // has none of them.
    private static SharedTenantLimits SharedLimits(ClusterMembership cluster, SharedFairShare fairShare, TenantLimits limits, LedgerShipper? shipper, GatewayTelemetry telemetry, TimeProvider time, ILogger logger)
    {
        var clusterTelemetry = new ClusterTelemetry(telemetry.Registry, () => cluster.Current, fairShare);
        var policy = new StoreDownPolicy(cluster.Model, () => cluster.Current, clusterTelemetry, time, logger);
        cluster.Resync = new StoreResync(() => cluster.Name, limits, policy, clusterTelemetry, logger, shipper);
        return new SharedTenantLimits(() => cluster.Connection, () => cluster.Name, policy);
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
        _adminHandler?.CloseStreams(); // an open dashboard must not hold the stop for its grace
        await _admin.StopAsync(deadline.Token).ConfigureAwait(false);
        GatewayLog.Stopped(_logger);
    }

    public async ValueTask DisposeAsync()
    {
        _config.Reloaded -= OnReloaded;
        await _scavenger.DisposeAsync().ConfigureAwait(false);
        await _compaction.DisposeAsync().ConfigureAwait(false);
        if (_parkedCollection is not null)
        {
            await _parkedCollection.DisposeAsync().ConfigureAwait(false);
        }

        await _data.DisposeAsync().ConfigureAwait(false);
        if (_sharedSlots is not null)
        {
            await _sharedSlots.DisposeAsync().ConfigureAwait(false);
        }

        if (_fairShare is not null)
        {
            await _fairShare.DisposeAsync().ConfigureAwait(false);
        }

        if (_sharedLimits is not null)
        {
            // Before the connection closes: what the leases hold goes back.
            await _sharedLimits.DisposeAsync().ConfigureAwait(false);
        }

        if (_cluster is not null)
        {
            // After the data plane: its record said "in flight" until the last request ended.
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }

        if (_h2c is not null)
        {
            await _h2c.DisposeAsync().ConfigureAwait(false);
        }

        _adminHandler?.CloseStreams();
        await _admin.DisposeAsync().ConfigureAwait(false);
        if (_adminHandler is not null)
        {
            await _adminHandler.DisposeAsync().ConfigureAwait(false);
        }

        await _discovery.DisposeAsync().ConfigureAwait(false);
        await _monitor.DisposeAsync().ConfigureAwait(false);
        _http.Dispose();
        if (_tenants is not null)
        {
            // After the listeners: the keys' last use as the last requests left it.
            await _tenants.DisposeAsync().ConfigureAwait(false);
        }

        if (_ledger is not null)
        {
            // After the listeners: the last requests' rows are queued by now, and go to disk here.
            await _ledger.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var worker in _state.Current.Workers.Workers)
        {
            await worker.Connections.CloseAsync().ConfigureAwait(false);
        }

        _upstreamLoops?.Dispose(); // after the pools: their connections close on it

        // Last: the spans of the last requests go out.
        await _tracing.DisposeAsync().ConfigureAwait(false);
    }

    private void OnReloaded(ReloadStatus status)
    {
        _telemetry.Config.CountReload(status);
        _tracing.Apply(_config.Current.Telemetry);
        _changes?.Pulse();
    }
}
