using AotProxy.Accounting;
using AotProxy.Cluster;

namespace AotProxy.Limits;

// What one request holds past the limit check: a place in its tenant's in-flight count, an RPM
// token, a TPM reservation (estimated prompt + max_tokens) and a budget reservation. The data
// plane settles it exactly once (LimitStage.Settle), in the finally that also releases the
// admission slot. default: the tenant has no limits. In a cluster, also what the request holds in
// the tenant's fleet-wide limits (shared; default alone or when the store did not answer).
internal readonly struct LimitLease(TenantLimitState state, MinuteLimit? requests, MinuteLimit? tokens, long reserved, long takenAt, BudgetReservation budget = default, SharedPlace shared = default)
{
    public TenantLimitState? State => state;

    public MinuteLimit? Requests => requests;

    public MinuteLimit? Tokens => tokens;

    public long Reserved => reserved;

    public BudgetReservation Budget => budget;

    public SharedPlace Shared => shared;

    // This lease with what the fleet-wide admit charged (LimitStage, after the shared admit).
    public LimitLease WithShared(SharedPlace place) => new(state, requests, tokens, reserved, takenAt, budget, place);

    // This lease with what its stream debited from the budgets (ContentMeter.Budget), and the
    // blocks it leased from the fleet's.
    public LimitLease WithStreamed(in StreamBudget streamed) =>
        streamed.Tokens == 0 && streamed.Leased == 0 ? this : new(state, requests, tokens, reserved, takenAt, budget.With(streamed), shared.WithLeased(streamed.Leased, streamed.LeasedNanos));

    // admitted = false: refused before anything went upstream (admission said no, the client
    // left while queued, or an exception came first): the request and the whole reservation go
    // back. Otherwise the reservation settles to the usage, estimated or exact (a stream cut
    // mid-way is estimated from what was relayed). No usage at all (an upstream error answer, no
    // worker, a failure before the response head) keeps the whole TPM reservation charged:
    // conservative, since the worker may have done work the gateway cannot count. Budgets charge
    // such a request nothing (TenantBudgetState.Settle): they are what the tenant is billed.
    public void Settle(bool admitted, Usage? usage)
    {
        if (state is null)
        {
            return;
        }

        state.Exit();
        budget.Settle(admitted, usage);
        shared.Settle(admitted, usage, budget.Price);
        if (!admitted)
        {
            requests?.GiveBack(1, takenAt);
            tokens?.GiveBack(reserved, takenAt);
            return;
        }

        if (tokens is null || usage is not { } used)
        {
            return;
        }

        tokens.Settle(reserved, used.TotalTokens, takenAt);
    }
}
