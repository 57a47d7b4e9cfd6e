using AotProxy.Accounting;

namespace AotProxy.Limits;

// What a request reserved against its tenant's budgets (tokens and worst-case nano-USD), and the
// model's price its usage is charged at. default: the tenant has no budget.
internal readonly record struct BudgetReservation(TenantBudgetState? State, long Tokens, long Nanos, ModelPrice Price)
{
    public void Settle(bool admitted, Usage? usage) => State?.Settle(this, admitted, usage);
}
