using System.Collections.Concurrent;
using AotProxy.Admin;
using AotProxy.Configuration;

namespace AotProxy.Accounting;

// Where settled usage goes, once per request that reached a worker (DataPlaneHandler records
// the same record it settles the admission lease with). In this version: per-tenant token
// counters (Prometheus, /api/tenants and the totals /api/status shows). The ledger and budgets
// hang off this same point later.
internal sealed class UsageRecorder(GatewayMetrics metrics)
{
    private readonly ConcurrentDictionary<string, TenantUsage> _tenants = new(StringComparer.Ordinal);
    private long _promptTokens;
    private long _completionTokens;

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    // null until the tenant's first usage.
    public TenantUsage? Of(string tenant) => _tenants.GetValueOrDefault(tenant);

    public void Record(TenantModel tenant, Usage usage)
    {
        _tenants.GetOrAdd(tenant.Name, static _ => new TenantUsage()).Add(usage);
        Interlocked.Add(ref _promptTokens, usage.PromptTokens);
        Interlocked.Add(ref _completionTokens, usage.CompletionTokens);
        metrics.CountUsage(tenant.Name, usage);
    }
}
