namespace AotProxy.Limits;

// The budget check's answer. Refused (LimitResult's BudgetTokens/BudgetUsd): Kind is the budget
// that refused, Left what it had left (tokens or nano-USD) and Overrun whether it was
// budget_overrun = "reject" refusing a max_tokens above that (else the budget was used up).
// Allowed: Completion is the max_tokens the request may use, below the one it asked for when
// Kind capped it (budget_overrun = "cap").
internal readonly record struct BudgetCheck(BudgetKind Kind, long Left, long Completion, bool Capped, bool Overrun);
