namespace AotProxy.Limits;

// Which of a tenant's budgets a check is about: the one that refused or capped a request.
internal enum BudgetKind : byte
{
    None,
    Tokens,        // budget_tokens
    MonthlyTokens, // monthly_budget_tokens
    Usd,           // budget_usd
    MonthlyUsd,    // monthly_budget_usd
}
