using AotProxy.Configuration;

namespace AotProxy.Cluster;

// What one request asks of its tenant's fleet-wide limits (SharedTenantLimits.TryAdmitAsync),
// and so what its settlement gives back: a place in the minute (Rpm > 0), Tokens in the token
// minute (Tpm > 0), a place in flight (MaxInFlight > 0), and BudgetTokens / BudgetNanos reserved
// against Budget (null without one). Month: the replica's calendar month (UTC) as yyyymm, which
// the monthly budgets are counted in.
internal readonly record struct SharedDemand(
    string Tenant,
    long Rpm,
    long Tpm,
    long Tokens,
    int MaxInFlight,
    TenantBudgetModel? Budget,
    long BudgetTokens,
    long BudgetNanos,
    int Month)
{
    public static int MonthOf(DateTimeOffset utc) => (utc.Year * 100) + utc.Month;

    // Only budget tokens and nanos of this tenant's budgets (a stream's leased blocks): what
    // HeldParts counts and a settlement releases of them, nothing else.
    public SharedDemand BudgetOnly(long tokens, long nanos) =>
        this with { Rpm = 0, Tpm = 0, Tokens = 0, MaxInFlight = 0, BudgetTokens = tokens, BudgetNanos = nanos };
}
