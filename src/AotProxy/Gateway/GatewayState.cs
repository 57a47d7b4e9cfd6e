using System.Globalization;
using AotProxy.Admission;
using AotProxy.Caching;
using AotProxy.Configuration;
using AotProxy.Hosting;
using AotProxy.Limits;
using AotProxy.Routing;
using Microsoft.Extensions.Logging;

namespace AotProxy.Gateway;

// The one component that applies a config snapshot to all state (YARP's ProxyConfigManager), at
// startup and for every reload ConfigStore accepted: it builds the worker set (a worker keeps its
// state while its name and URL stay the same), gives the limit stage, admission and the response
// cache the new snapshot and pools, and only then publishes the config and the workers together, as one
// GatewayView, with one Interlocked.Exchange. A request reads Current once: it sees the old config
// with the old workers or the new with the new, never a mix, and the state it looks up for a new
// view is in place already. Models found by discovery publish a new view the same way.
// Capacity that changes between reloads (health, breakers, drains) reaches admission through
// CapacitySignal, not through here.
internal sealed class GatewayState
{
    private readonly Lock _applyLock = new();
    private readonly WorkerRegistry _workers;
    private readonly TenantLimits _limits;
    private readonly AdmissionController _admissions;
    private readonly ResponseCache _responses;
    private readonly HeapCompaction _compaction;
    private readonly ILogger _logger;
    private GatewayView _current;

    public GatewayState(GatewaySnapshot initial, WorkerRegistry workers, TenantLimits limits, AdmissionController admissions, ResponseCache responses, HeapCompaction compaction, ILogger logger)
    {
        _workers = workers;
        _limits = limits;
        _admissions = admissions;
        _responses = responses;
        _compaction = compaction;
        _logger = logger;
        var set = workers.Build(initial, WorkerSet.Empty);
        limits.Apply(initial);
        admissions.Apply(set, initial);
        responses.Apply(initial.ResponseCache);
        _current = new GatewayView(initial, set);
    }

    public GatewayView Current => Volatile.Read(ref _current);

    // The exact response cache (ResponseCacheStage's store), its bounds the current snapshot's.
    public ResponseCache Responses => _responses;

    // A reload: ConfigStore calls it with each snapshot it accepted, one at a time.
    public void Apply(GatewaySnapshot next)
    {
        GatewayView previous;
        lock (_applyLock)
        {
            previous = Current;
            var workers = _workers.Build(next, previous.Workers);
            // First, so that admission counts no slot of theirs: a request still on the view
            // before finishes where it is, and sends nothing new to them.
            WorkerRegistry.Retire(previous.Workers, workers);
            _limits.Apply(next);
            _admissions.Apply(workers, next);
            _responses.Apply(next.ResponseCache);
            Interlocked.Exchange(ref _current, new GatewayView(next, workers));
        }

        previous.Replace();
        NoteRestartNeeded(previous.Config, next);
        GatewayLog.Applied(_logger, next.Revision, next.Workers.Length, next.Tenants.Length);
        _compaction.Schedule();
    }

    // Discovery changed a worker's models: the same config, its pools rebuilt.
    public void OnModelsDiscovered()
    {
        GatewayView previous;
        lock (_applyLock)
        {
            previous = Current;
            var workers = WorkerRegistry.Rebuild(previous.Workers);
            _admissions.Apply(workers, previous.Config);
            Interlocked.Exchange(ref _current, new GatewayView(previous.Config, workers));
        }

        previous.Replace();
    }

    private static string Describe(StoreModel store) =>
        $"{store.Postgres?.ToString() ?? "(none)"}, ledger_retention_months {store.RetentionMonths.ToString(CultureInfo.InvariantCulture)}";

    private static string Describe(ClusterModel cluster) => cluster.Enabled
        ? $"{cluster.Store} replica={cluster.Replica} heartbeat={Duration.Format(cluster.Heartbeat)} member_ttl={Duration.Format(cluster.MemberTtl)} store_down={cluster.StoreDown}"
        : "off";

    private static string TransportName(ListenerTransport transport) => transport == ListenerTransport.Epoll ? "epoll" : "sockets";

    // What a reload cannot change: the listeners are bound, and the ledger's file is open.
    private void NoteRestartNeeded(GatewaySnapshot previous, GatewaySnapshot next)
    {
        var (was, now) = (previous.Server, next.Server);
        if (!was.Listen.Equals(now.Listen))
        {
            GatewayLog.RestartNeeded(_logger, "server.listen", was.Listen.ToString(), now.Listen.ToString());
        }

        if (!was.AdminListen.Equals(now.AdminListen))
        {
            GatewayLog.RestartNeeded(_logger, "server.admin_listen", was.AdminListen.ToString(), now.AdminListen.ToString());
        }

        if (was.MaxConnections != now.MaxConnections)
        {
            GatewayLog.RestartNeeded(_logger, "server.max_connections", was.MaxConnections.ToString(CultureInfo.InvariantCulture), now.MaxConnections.ToString(CultureInfo.InvariantCulture));
        }

        if (was.ParkIdleAfter != now.ParkIdleAfter)
        {
            GatewayLog.RestartNeeded(_logger, "server.park_idle_after", Duration.Format(was.ParkIdleAfter), Duration.Format(now.ParkIdleAfter));
        }

        if (was.MaxHeaderBytes != now.MaxHeaderBytes)
        {
            GatewayLog.RestartNeeded(_logger, "server.max_header_bytes", was.MaxHeaderBytes.ToString(CultureInfo.InvariantCulture), now.MaxHeaderBytes.ToString(CultureInfo.InvariantCulture));
        }

        if (was.Transport != now.Transport)
        {
            GatewayLog.RestartNeeded(_logger, "server.transport", TransportName(was.Transport), TransportName(now.Transport));
        }

        // The writer holds its file open: a new path would split the ledger mid-run, so it takes a restart.
        if (previous.Ledger.Path != next.Ledger.Path)
        {
            GatewayLog.RestartNeeded(_logger, "ledger.path", previous.Ledger.Path, next.Ledger.Path);
        }

        // The shipper and its Postgres connections are made at startup (LedgerShipper).
        if (previous.Store != next.Store)
        {
            GatewayLog.RestartNeeded(_logger, "store", Describe(previous.Store), Describe(next.Store));
        }

        // The replica joined its cluster at startup, under its name, with its heartbeat.
        if (previous.Cluster != next.Cluster)
        {
            GatewayLog.RestartNeeded(_logger, "cluster", Describe(previous.Cluster), Describe(next.Cluster));
        }
    }
}
