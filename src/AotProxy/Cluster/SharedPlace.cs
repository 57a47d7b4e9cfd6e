using AotProxy.Accounting;

namespace AotProxy.Cluster;

// What a request holds in its tenant's fleet-wide limits once admitted (Limits/LimitLease): the
// demand the admit script charged, in Redis second Second. default: alone, or the store did not
// answer (nothing to settle).
internal readonly record struct SharedPlace(SharedTenantLimits? Store, SharedDemand Demand, long Second)
{
    public void Settle(bool admitted, Usage? usage, ModelPrice price) => Store?.Settle(this, admitted, usage, price);
}
