using AotProxy.Cluster;

namespace AotProxy.Admission;

// The output a stream has been charged so far: each content chunk relayed moves the tenant's and
// the class's counters by output_weight / weight (VTC charges tokens as they are generated, so a
// tenant whose requests run long cannot look cheap while they run), once the chunks pass what the
// grant prepaid ([scheduler] lookahead). Settlement then charges the usage's cost less all that
// (GrantCharge.Settlement), so the total is exact. [cluster]: after the request's turn on the
// fleet's workers, the fleet's counter too. That is a local add to what the next flush sends
// (SharedVtcTenant.Add): no Redis call per chunk, one per flush interval however many chunks.
// One per pooled ProxyRequest, reused request after request: no object per request, and a
// charge is one compare-and-swap per account.
internal sealed class StreamedCharge
{
    private FairShareAccount? _tenant;
    private FairShareAccount? _class;
    private SharedVtcTenant? _fleet;
    private GrantCharge _charge;
    private long _chunks;

    // Content chunks charged since Start.
    public long Chunks => Volatile.Read(ref _chunks);

    // fleet: the tenant's fleet counter, once the request took its turn (AdmissionLease.Turned).
    // Before any chunk: a restart keeps nothing.
    public void Start(FairShareAccount tenant, FairShareAccount classAccount, in GrantCharge charge, SharedVtcTenant? fleet)
    {
        _tenant = tenant;
        _class = classAccount;
        _fleet = fleet;
        _charge = charge;
        Volatile.Write(ref _chunks, 0);
    }

    // `chunks` more content chunks went to the client. Without a Start (not admitted), nothing.
    // Only the request's forwarding loop calls it.
    public void Charge(long chunks)
    {
        if (chunks <= 0 || _tenant is null)
        {
            return;
        }

        var before = _charge.Charged(Chunks);
        var after = _charge.Charged(Interlocked.Add(ref _chunks, chunks));
        if (after == before)
        {
            return; // within the lookahead the grant prepaid
        }

        _tenant.Charge((after - before) / _charge.TenantWeight);
        _class!.Charge((after - before) / _charge.ClassWeight);
        _fleet?.Add(SharedVtc.ToMicro(after / _charge.TenantWeight) - SharedVtc.ToMicro(before / _charge.TenantWeight));
    }

    // Settled (AdmissionStage.Release) or never started: the next request starts from nothing.
    public void End()
    {
        _tenant = null;
        _class = null;
        _fleet = null;
        Volatile.Write(ref _chunks, 0);
    }
}
