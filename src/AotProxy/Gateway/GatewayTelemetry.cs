using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Caching;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Http;
using AotProxy.Ledger;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tracing;
using Prometheus;

namespace AotProxy.Gateway;

// The SPEC's metric names, on a registry of our own (tests run several gateways in one process),
// each stage's in its stage's folder as YARP's Forwarder/ForwarderTelemetry.cs is. Gauges that
// mirror state (in-flight, healthy workers, budgets left) are filled by their stage's telemetry
// just before each scrape (Collect*), so the hot path pays nothing for them.
internal sealed class GatewayTelemetry
{
    // time: the clock the recent errors are stamped with.
    public GatewayTelemetry(TimeProvider? time = null)
    {
        Errors = new RecentErrors(time ?? TimeProvider.System);
        Registry = Metrics.NewCustomRegistry();
        Requests = new RequestTelemetry(Registry);
        Forwarding = new ForwardingTelemetry(Registry);
        Workers = new WorkerTelemetry(Registry);
        Usage = new UsageTelemetry(Registry, Tenants);
        Config = new ConfigTelemetry(Registry);
        Admission = new AdmissionTelemetry(Registry);
        Limits = new LimitTelemetry(Registry, Tenants);
        Pacing = new PacingTelemetry(Registry);
        Ledger = new LedgerTelemetry(Registry);
        Tracing = new TraceTelemetry(Registry);
        ResponseCache = new ResponseCacheTelemetry(Registry);
        Connections = new ConnectionTelemetry(Registry);
    }

    public CollectorRegistry Registry { get; }

    // The tenant label of the usage and limit counters, capped by [telemetry] max_tenant_series.
    public TenantSeries Tenants { get; } = new();

    public RequestTelemetry Requests { get; }

    public ForwardingTelemetry Forwarding { get; }

    public WorkerTelemetry Workers { get; }

    public UsageTelemetry Usage { get; }

    public ConfigTelemetry Config { get; }

    public AdmissionTelemetry Admission { get; }

    public LimitTelemetry Limits { get; }

    public PacingTelemetry Pacing { get; }

    public LedgerTelemetry Ledger { get; }

    public TraceTelemetry Tracing { get; }

    public ResponseCacheTelemetry ResponseCache { get; }

    public ConnectionTelemetry Connections { get; }

    // The last failed requests, for the live console (/api/events).
    public RecentErrors Errors { get; }

    // The state the scrape-time gauges mirror; GatewayHost's wiring, once.
    public void CollectFrom(GatewayState state, AdmissionController admissions, TenantLimits limits, LedgerWriter? ledger)
    {
        Tenants.ReadCapFrom(() => state.Current.Config.Telemetry.MaxTenantSeries);
        Workers.CollectFrom(state);
        Forwarding.CollectFrom(state);
        Pacing.CollectFrom(state);
        Admission.CollectFrom(state, admissions);
        Limits.CollectFrom(state, limits);
        if (ledger is not null)
        {
            Ledger.CollectFrom(ledger);
        }
    }

    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) =>
        Registry.CollectAndExportAsTextAsync(destination, cancellationToken);
}
