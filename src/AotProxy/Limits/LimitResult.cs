namespace AotProxy.Limits;

// The limit check's answer: a lease to settle (Refusal None), or the limit that refused, with
// the tokens the request asked for. Budget: what the budget check said (default without a budget).
// SharedWait: a refusal by the fleet-wide limits (Cluster/SharedTenantLimits; RPM, TPM or
// max_in_flight), how long until there is room; zero for a refusal by this replica's own limits.
internal readonly record struct LimitResult(LimitRefusal Refusal, LimitLease Lease, TenantLimitState? State, long Requested, BudgetCheck Budget = default, TimeSpan SharedWait = default)
{
    public bool IsAllowed => Refusal == LimitRefusal.None;
}
