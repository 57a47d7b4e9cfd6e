using AotProxy.Accounting;

namespace AotProxy.Limits;

// What a request reserved against its tenant's budgets (tokens and worst-case nano-USD), and the
// model's price its usage is charged at. default: the tenant has no budget.
internal readonly record struct BudgetReservation(TenantBudgetState? State, long Tokens, long Nanos, ModelPrice Price)
{
    public void Settle(bool admitted, Usage? usage) => State?.Settle(this, admitted, usage);

    // The reservation with what a stream debited as it streamed (StreamBudget): settled together.
    public BudgetReservation With(in StreamBudget streamed) => this with { Tokens = Tokens + streamed.Tokens, Nanos = Nanos + streamed.Nanos };
}
