namespace AotProxy.Admission;

// The output a stream has been charged so far: each content chunk relayed moves the tenant's and
// the class's counters by output_weight / weight (VTC charges tokens as they are generated, so a
// tenant whose requests run long cannot look cheap while they run). Settlement then charges the
// usage's cost less the grant's charge and this (GrantCharge.Settlement), so the total is exact.
// One per pooled ProxyRequest, reused request after request: no object per request, and a
// charge is one compare-and-swap per account.
internal sealed class StreamedCharge
{
    private FairShareAccount? _tenant;
    private FairShareAccount? _class;
    private double _perChunkTenant;
    private double _perChunkClass;
    private long _chunks;

    // Content chunks charged since Start.
    public long Chunks => Volatile.Read(ref _chunks);

    public void Start(FairShareAccount tenant, FairShareAccount classAccount, in GrantCharge charge)
    {
        _tenant = tenant;
        _class = classAccount;
        _perChunkTenant = charge.OutputWeight / charge.TenantWeight;
        _perChunkClass = charge.OutputWeight / charge.ClassWeight;
        Volatile.Write(ref _chunks, 0);
    }

    // `chunks` more content chunks went to the client. Without a Start (not admitted), nothing.
    public void Charge(long chunks)
    {
        if (chunks <= 0 || _tenant is null)
        {
            return;
        }

        Interlocked.Add(ref _chunks, chunks);
        _tenant.Charge(chunks * _perChunkTenant);
        _class!.Charge(chunks * _perChunkClass);
    }

    // Settled (AdmissionStage.Release) or never started: the next request starts from nothing.
    public void End()
    {
        _tenant = null;
        _class = null;
        Volatile.Write(ref _chunks, 0);
    }
}
