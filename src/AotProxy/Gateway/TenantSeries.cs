using System.Collections.Concurrent;
using Prometheus;

namespace AotProxy.Gateway;

// The tenant label of every metric labelled by tenant (llm_gateway_tokens_total and the other
// usage counters, llm_rate_limiter_*): the tenant's own name for the first [telemetry]
// max_tenant_series tenants this process has seen, "other" for every later one, so that runtime
// tenants (issue 17) cannot grow the series without bound. Decided once per tenant, when the
// telemetry first makes one of its series (the telemetry keeps the child under the tenant's name),
// so the request path pays nothing more. A reload sets the cap for tenants first seen after it:
// one with its own series keeps it (its counters stay continuous), one folded into "other" stays
// there until a restart.
internal sealed class TenantSeries
{
    public const string Other = "other";

    private readonly HashSet<string> _own = new(StringComparer.Ordinal);
    private readonly HashSet<string> _folded = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private Func<int> _cap = static () => Configuration.TelemetryModel.DefaultMaxTenantSeries;

    // GatewayHost's wiring, once: the cap of the config the gateway runs now.
    public void ReadCapFrom(Func<int> cap) => _cap = cap;

    // TelemetrySeries.Child for a collector labelled by tenant alone: the child of the tenant's
    // label, kept under the tenant's name.
    public TChild Child<TChild>(ConcurrentDictionary<string, TChild> children, Collector<TChild> collector, string tenant)
        where TChild : ChildBase =>
        children.GetOrAdd(tenant, static (key, state) => state.Collector.WithLabels(state.Self.Label(key)), (Self: this, Collector: collector));

    // Cold: once per tenant and series kind (the callers cache what it answers).
    public string Label(string tenant)
    {
        lock (_lock)
        {
            if (_own.Contains(tenant))
            {
                return tenant;
            }

            if (!_folded.Contains(tenant) && _own.Count < _cap())
            {
                _own.Add(tenant);
                return tenant;
            }

            _folded.Add(tenant); // and stays: another metric's series of it must not appear later
            return Other;
        }
    }
}
