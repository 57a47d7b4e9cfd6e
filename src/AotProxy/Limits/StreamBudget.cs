using AotProxy.Http;

namespace AotProxy.Limits;

// One stream's draw on its tenant's budgets ([[tenants]] stream_budget_cutoff). The stream
// reserved its prompt only (TenantBudgetState.TryReserve); each content chunk it relays is one
// completion token at the model's output price, debited before the chunk goes out and added to
// what the tenant's requests in flight hold, so every stream of the tenant on this replica draws
// on one remaining amount, chunk by chunk. The chunk that no longer fits is not relayed: the
// stream ends at the cap. The debits are the request's reservation from then on: they go back
// when it settles, which charges the usage (exact, or the relayed chunks of a cut stream) once
// (LimitLease.Settle). A struct inside the relay: no allocation per chunk. default: no cutoff.
internal struct StreamBudget(TenantBudgetState? state, long outputNanos)
{
    public readonly bool IsOn => state is not null;

    // A stream of a tenant with stream_budget_cutoff: the limit stage reserves its prompt only.
    public static bool AppliesTo(ProxyRequest request) =>
        request.Caller.Tenant.StreamBudgetCutoff && request.Inspected.Stream && request.Endpoint != EndpointKind.Embeddings;

    // The budget such a stream draws on as it is relayed (its reservation's tenant and price);
    // default for any other request.
    public static StreamBudget For(ProxyRequest request) =>
        AppliesTo(request) && request.Limit.Lease.Budget is { State: { } state } budget
            ? new StreamBudget(state, budget.Price.OutputNanos)
            : default;

    // The completion tokens debited so far (= content chunks relayed), and their nano-USD.
    public long Tokens { readonly get; private set; }

    public readonly long Nanos => Tokens * outputNanos;

    // False: a budget has less than one more token; nothing was debited.
    public bool TryDebit()
    {
        if (state is null)
        {
            return true;
        }

        if (!state.TryDebit(1, outputNanos))
        {
            return false;
        }

        Tokens++;
        return true;
    }

    // The debits go back without a charge: the response was not accounted (the forwarder failed
    // before it could hand them over).
    public void GiveBack()
    {
        state?.Release(Tokens, Nanos);
        Tokens = 0;
    }
}
