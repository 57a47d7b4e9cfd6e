namespace AotProxy.Accounting;

// One tenant's usage as the ledger holds it: all time, and in the current calendar month (UTC).
// Read from the ledger at startup, it seeds the budgets and the monthly counters, so a restart
// loses nothing. Cost is in nano-USD (1e-9 USD): a price per million tokens in USD times a token
// count is then a whole number of nano-USD per thousand tokens, and sums stay exact in a long.
internal readonly record struct UsageTotals(
    string Tenant,
    long LifetimeTokens,
    long MonthTokens,
    long LifetimeCostNanos,
    long MonthCostNanos);
