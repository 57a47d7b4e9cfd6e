namespace AotProxy.Limits;

// The limit check's answer: a lease to settle (Refusal None), or the limit that refused, with
// the tokens the request asked for. Budget: what the budget check said (default without a budget).
internal readonly record struct LimitResult(LimitRefusal Refusal, LimitLease Lease, TenantLimitState? State, long Requested, BudgetCheck Budget = default)
{
    public bool IsAllowed => Refusal == LimitRefusal.None;
}
