using System.Collections.Concurrent;
using AotProxy.Configuration;

namespace AotProxy.Accounting;

// Where settled usage goes, once per request that reached a worker (AccountingStage records
// the same usage the admission and limit leases settle to). In this version: per-tenant token
// counters (Prometheus, /api/tenants and the totals /api/status shows), and the monthly tokens,
// seeded from the ledger at startup so that a restart loses nothing.
internal sealed class UsageRecorder(UsageTelemetry telemetry, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, TenantUsage> _tenants = new(StringComparer.Ordinal);
    private long _promptTokens;
    private long _completionTokens;

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    // null until the tenant's first usage.
    public TenantUsage? Of(string tenant) => _tenants.GetValueOrDefault(tenant);

    // The tenant's tokens in the current calendar month (UTC), ledger included.
    public long MonthTokens(string tenant) => Of(tenant)?.MonthTokens(TenantUsage.MonthOf(time.GetUtcNow())) ?? 0;

    // At startup, from LedgerDatabase.ReadTotals (read at `now`).
    public void Seed(IEnumerable<UsageTotals> totals, DateTimeOffset now)
    {
        var month = TenantUsage.MonthOf(now);
        foreach (var total in totals)
        {
            _tenants.GetOrAdd(total.Tenant, static _ => new TenantUsage()).Seed(month, total.MonthTokens);
        }
    }

    public void Record(TenantModel tenant, Usage usage)
    {
        _tenants.GetOrAdd(tenant.Name, static _ => new TenantUsage()).Add(usage, TenantUsage.MonthOf(time.GetUtcNow()));
        Interlocked.Add(ref _promptTokens, usage.PromptTokens);
        Interlocked.Add(ref _completionTokens, usage.CompletionTokens);
        telemetry.CountUsage(tenant.Name, usage);
    }
}
