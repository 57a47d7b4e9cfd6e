using AotProxy.Admin;
using AotProxy.Configuration;

namespace AotProxy.Accounting;

// Where settled usage goes. In this version: per-tenant token counters (Prometheus and the
// totals /api/status shows). The ledger and budgets hang off this same point later.
internal sealed class UsageRecorder(GatewayMetrics metrics)
{
    private long _promptTokens;
    private long _completionTokens;

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    public void Record(TenantModel tenant, Usage usage)
    {
        Interlocked.Add(ref _promptTokens, usage.PromptTokens);
        Interlocked.Add(ref _completionTokens, usage.CompletionTokens);
        metrics.CountTokens(tenant.Name, usage.PromptTokens, usage.CompletionTokens);
    }
}
