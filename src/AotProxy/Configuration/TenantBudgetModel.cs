namespace AotProxy.Configuration;

// A tenant's budgets, 0 = none: tokens and nano-USD (1e-9 USD, Accounting/UsageTotals), for all
// time and per calendar month (UTC). A tenant gets one only when at least one is set.
internal sealed record TenantBudgetModel(long Tokens, long MonthlyTokens, long Nanos, long MonthlyNanos)
{
    // 1e9 USD: far past any real budget, and a sum of spends stays within a long (9.2e18 nanos).
    public const double MaxUsd = 1_000_000_000;

    // 1e15 tokens, for the same reason.
    public const long MaxTokens = 1_000_000_000_000_000;

    public bool LimitsCost => Nanos > 0 || MonthlyNanos > 0;
}
