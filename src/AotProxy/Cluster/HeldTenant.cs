namespace AotProxy.Cluster;

// One tenant's parts of the store's reserved totals that this replica holds (HeldParts): places in
// flight and budget reservations of the requests the admit script took and no settlement gave back,
// and the places in flight its lease holds.
internal sealed class HeldTenant(string tenant)
{
    private long _inFlight;
    private long _tokens;
    private long _nanos;

    public string Tenant => tenant;

    public long InFlight => Interlocked.Read(ref _inFlight);

    public long Tokens => Interlocked.Read(ref _tokens);

    public long Nanos => Interlocked.Read(ref _nanos);

    public void Lease(long places) => Interlocked.Add(ref _inFlight, places);

    // sign: +1 when the admit script took the demand, -1 when its settlement gives it back.
    public void Add(in SharedDemand demand, int sign)
    {
        if (demand.MaxInFlight > 0)
        {
            Interlocked.Add(ref _inFlight, sign);
        }

        if (demand.Budget is not null)
        {
            Interlocked.Add(ref _tokens, sign * demand.BudgetTokens);
            Interlocked.Add(ref _nanos, sign * demand.BudgetNanos);
        }
    }
}
