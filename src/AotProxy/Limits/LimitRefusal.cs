namespace AotProxy.Limits;

// Which tenant limit refused a request. The names are the `reason` label of
// llm_rate_limiter_rejected_total and, for Requests and Tokens, OpenAI's error `type`. The
// budgets refuse with insufficient_quota (Http/QuotaError).
internal enum LimitRefusal : byte
{
    None,
    Requests,
    Tokens,
    InFlight,
    BudgetTokens, // budget_tokens or monthly_budget_tokens
    BudgetUsd,    // budget_usd or monthly_budget_usd
}
