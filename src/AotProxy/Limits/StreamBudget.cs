using AotProxy.Cluster;
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
// With [cluster] (shared: the place the admit script took), each chunk also takes one token of a
// block leased from the fleet's budgets (SharedTenantLimits.LeaseStreamBlockAsync): a local
// decrement while the block lasts, one round trip when it runs out (NeedsBlock; the relay awaits
// the lease before the chunk that needs it). The blocks are reserved in the store like the
// prompt, and settled with it: the unused part goes back, the usage is charged once.
internal struct StreamBudget(TenantBudgetState? state, long outputNanos, SharedPlace shared = default)
{
    private long _block; // fleet tokens leased and not yet debited

    private FleetDraw _fleet = shared.Store is not null && !shared.Alone ? FleetDraw.Blocks : FleetDraw.None;

    public readonly bool IsOn => state is not null;

    // A stream of a tenant with stream_budget_cutoff: the limit stage reserves its prompt only.
    public static bool AppliesTo(ProxyRequest request) =>
        request.Caller.Tenant.StreamBudgetCutoff && request.Inspected.Stream && request.Endpoint != EndpointKind.Embeddings;

    // The budget such a stream draws on as it is relayed (its reservation's tenant and price, and
    // its place in the fleet's budgets); default for any other request.
    public static StreamBudget For(ProxyRequest request) =>
        AppliesTo(request) && request.Limit.Lease is { Budget: { State: { } state } budget } lease
            ? new StreamBudget(state, budget.Price.OutputNanos, lease.Shared)
            : default;

    // The completion tokens debited so far (= content chunks relayed), and their nano-USD.
    public long Tokens { readonly get; private set; }

    public readonly long Nanos => Tokens * outputNanos;

    // The fleet tokens leased in blocks so far (reserved in the store until the settlement), and
    // their nano-USD.
    public long Leased { readonly get; private set; }

    public readonly long LeasedNanos => Leased * outputNanos;

    // The stream was cut because the store did not answer a lease and store_down is "closed".
    public readonly bool StoreClosed => _fleet == FleetDraw.Closed;

    public StreamDebit TryDebit()
    {
        if (state is null)
        {
            return StreamDebit.Taken;
        }

        switch (_fleet)
        {
            case FleetDraw.Blocks when _block == 0:
                return StreamDebit.NeedsBlock;
            case FleetDraw.Exhausted or FleetDraw.Closed:
                return StreamDebit.Cut;
        }

        if (!state.TryDebit(1, outputNanos))
        {
            return StreamDebit.Cut;
        }

        if (_fleet == FleetDraw.Blocks)
        {
            _block--;
        }

        Tokens++;
        return StreamDebit.Taken;
    }

    // The next block (NeedsBlock): tokens granted, 0 when the fleet's budget has none left,
    // SharedTenantLimits.StoreDownBlock when the store did not answer.
    public readonly ValueTask<long> LeaseAsync() => shared.Store!.LeaseStreamBlockAsync(shared.Demand, outputNanos);

    public void Add(long granted)
    {
        if (granted > 0)
        {
            _block += granted;
            Leased += granted;
        }
        else if (granted == 0)
        {
            _fleet = FleetDraw.Exhausted;
        }
        else
        {
            // store_down: "closed" ends the stream here; "local" goes on as a lone replica does,
            // on this replica's own view, its settlement charged to the store once it answers.
            _fleet = shared.Store!.StoreDown?.Mode == Configuration.StoreDownModes.Closed ? FleetDraw.Closed : FleetDraw.None;
        }
    }

    // The debits go back without a charge: the response was not accounted (the forwarder failed
    // before it could hand them over). The leased blocks go back to the store too.
    public void GiveBack()
    {
        state?.Release(Tokens, Nanos);
        Tokens = 0;
        if (Leased > 0)
        {
            shared.Blocks(Leased, LeasedNanos).Settle(admitted: false, null, default);
            Leased = 0;
        }
    }
}
