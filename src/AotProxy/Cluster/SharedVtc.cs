using System.Collections.Concurrent;
using AotProxy.Admission;

namespace AotProxy.Cluster;

// One model's fair share fleet-wide (docs/CLUSTER.md, "Fair share"): the same charges as its local
// tenant counters (FairShareAccount), in micro-tokens per weight, flushed to `aotproxy:vtc:{model}`
// by SharedFairShare every interval, and the fleet's backlogged tenants with their counters as the
// last flush read them. ModelAdmission asks MayGrant before it grants a free slot.
internal sealed class SharedVtc(ModelAdmission model, TimeProvider time, TimeSpan stale)
{
    private const double Micro = 1_000_000;

    private readonly ConcurrentDictionary<string, SharedVtcTenant> _tenants = new(StringComparer.Ordinal);
    private volatile KeyValuePair<string, long>[] _backlogged = [];
    private long _freshAt; // 0: no answer yet
    private long _deferred;

    public ModelAdmission Model { get; } = model;

    // Grants the rule refused to this replica's fairest waiter (ModelAdmission then tries the
    // fleet's least-served waiter here, or leaves the slot to another replica).
    public long Deferred => Interlocked.Read(ref _deferred);

    // The fleet's backlogged tenants and their counters (micro-tokens per weight) at the last flush.
    public IReadOnlyList<KeyValuePair<string, long>> Backlogged => _backlogged;

    public SharedVtcTenant Tenant(string name) => _tenants.GetOrAdd(name, static n => new SharedVtcTenant(n));

    // What the local account was charged (per weight; negative: a refund).
    public void Charge(string tenant, double perWeight) => Tenant(tenant).Add((long)Math.Round(perWeight * Micro));

    // A settlement: its difference, and the request's whole cost per weight for the allowance.
    public void Settle(string tenant, double difference, double costPerWeight)
    {
        var account = Tenant(tenant);
        account.Add((long)Math.Round(difference * Micro));
        account.Settled((long)Math.Round(costPerWeight * Micro));
    }

    // The grant rule: `tenant`, this replica's fairest waiter, may take a free slot if its fleet
    // counter is within one request's cost (this one's estimate or, if larger, its last settled
    // request's) of the least-served backlogged tenant elsewhere in the fleet; otherwise the slot is
    // left to that tenant's replica. Data older than `stale` (two flush intervals): local decides.
    public bool MayGrant(string tenant, double estimatePerWeight)
    {
        var freshAt = Interlocked.Read(ref _freshAt);
        if (freshAt == 0 || time.GetElapsedTime(freshAt) > stale)
        {
            return true;
        }

        var least = long.MaxValue;
        foreach (var (name, counter) in _backlogged)
        {
            if (counter < least && !string.Equals(name, tenant, StringComparison.Ordinal))
            {
                least = counter;
            }
        }

        var mine = Tenant(tenant);
        var allowance = Math.Max((long)Math.Round(estimatePerWeight * Micro), mine.LastCost);
        if (least == long.MaxValue || mine.Counter <= least + allowance)
        {
            return true;
        }

        Interlocked.Increment(ref _deferred);
        return false;
    }

    // The tenants a flush sends: those charged or waiting here since the last one.
    public List<(SharedVtcTenant Tenant, long Delta, int Waiting)> Take()
    {
        var sent = new List<(SharedVtcTenant, long, int)>();
        foreach (var account in Model.Tenants)
        {
            var tenant = Tenant(account.Name);
            var waiting = account.Waiting;
            var delta = tenant.Take();
            if (delta != 0 || waiting > 0 || tenant.LastWaiting > 0)
            {
                tenant.LastWaiting = waiting;
                sent.Add((tenant, delta, waiting));
            }
        }

        return sent;
    }

    public void Answered(List<(SharedVtcTenant Tenant, long Delta, int Waiting)> sent, long[] counters, KeyValuePair<string, long>[] backlogged)
    {
        for (var i = 0; i < sent.Count; i++)
        {
            sent[i].Tenant.Answered(counters[i]);
        }

        _backlogged = backlogged;
        Interlocked.Exchange(ref _freshAt, time.GetTimestamp());
    }

    public static void Failed(List<(SharedVtcTenant Tenant, long Delta, int Waiting)> sent)
    {
        foreach (var (tenant, _, _) in sent)
        {
            tenant.Failed();
            tenant.LastWaiting = int.MaxValue; // sent again next time, whatever it waits then
        }
    }
}
