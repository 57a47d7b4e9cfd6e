namespace AotProxy.Admin.Contracts;

// GET /api/tenants: one configured tenant, its limits as configured (0 = unlimited), and what it
// is doing now (waiting and in flight, summed over the model pools) and has used since start
// (Requests: those that reached a worker and were accounted).
// The limit stage's view: requests and tokens left in its RPM and TPM buckets now (null without
// that limit) and its requests past the limit check (queued or running; what max_in_flight counts).
// Budgets: as configured (0 = none; USD), what each has left for new requests (budget - spent -
// reserved by requests in flight, at least 0; null without that budget) and what was spent, for
// all time and this calendar month (UTC), counted while the tenant has a budget (and seeded from
// the ledger at startup); null without any budget.
// Source: where the tenant is defined: the config file, or the tenant store (POST /api/tenants).
internal sealed record TenantReport(
    string Name,
    string Class,
    int Weight,
    string[] Models,
    long Rpm,
    long Tpm,
    int MaxInFlight,
    int Waiting,
    int InFlight,
    long Requests,
    long PromptTokens,
    long CompletionTokens,
    long CachedPromptTokens,   // part of PromptTokens
    long ReasoningTokens,      // part of CompletionTokens
    long EstimatedRequests,    // of Requests: accounted with the gateway's estimate (no usage reported)
    long MonthTokens,          // prompt + completion in this calendar month (UTC), the ledger's from before the start included
    long? RemainingRequests,
    long? RemainingTokens,
    int LimitedInFlight,
    long BudgetTokens,
    long MonthlyBudgetTokens,
    decimal BudgetUsd,
    decimal MonthlyBudgetUsd,
    long? BudgetLeftTokens,
    long? MonthlyBudgetLeftTokens,
    decimal? BudgetLeftUsd,
    decimal? MonthlyBudgetLeftUsd,
    long? SpentTokens,
    long? MonthSpentTokens,
    decimal? SpentUsd,
    decimal? MonthSpentUsd,
    string Source = "file",    // "file": [[tenants]]; "store": created through the admin API
    bool CacheSalt = false,    // its requests carry its cache_salt (its own key, else its class's)
    bool StreamBudgetCutoff = false,
    bool ResponseCache = false);  // its deterministic requests may be answered from the response cache
