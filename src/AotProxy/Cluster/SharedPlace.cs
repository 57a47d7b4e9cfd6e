using AotProxy.Accounting;

namespace AotProxy.Cluster;

// What a request holds in its tenant's fleet-wide limits once admitted (Limits/LimitLease): the
// demand the admit script charged, in Redis second Second. default: alone (nothing to settle).
// Second = AloneSecond: admitted by store_down while the store did not answer; the store holds
// nothing of it, so its settlement goes into the outage's record (StoreDownPolicy), never to the
// settle script (which would release another request's parts).
internal readonly record struct SharedPlace(SharedTenantLimits? Store, SharedDemand Demand, long Second)
{
    // Redis's TIME is never 0.
    public const long AloneSecond = 0;

    public bool Alone => Second == AloneSecond;

    public void Settle(bool admitted, Usage? usage, ModelPrice price) => Store?.Settle(this, admitted, usage, price);

    // The place with the blocks its stream leased from the budgets (Limits/StreamBudget), which its
    // settlement releases with the prompt's reservation.
    public SharedPlace WithLeased(long tokens, long nanos) =>
        tokens == 0 ? this : this with { Demand = Demand with { BudgetTokens = Demand.BudgetTokens + tokens, BudgetNanos = Demand.BudgetNanos + nanos } };

    // The leased blocks alone, as a place whose settlement releases only them (nothing else held).
    public SharedPlace Blocks(long tokens, long nanos) => this with { Demand = Demand.BudgetOnly(tokens, nanos) };
}
