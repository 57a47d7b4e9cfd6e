using System.Collections.Concurrent;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// What this replica holds in the store's reserved totals, as its own books say: every demand the
// admit script took (SharedTenantLimits tells Take) until its settlement (Release, told before the
// settle script is sent, so a reconcile never counts a part whose release it runs ahead of), the
// places in flight the tenants' leases hold (Lease, told when granted and when given back), and
// each worker's slots in use (SharedWorker.DropLease: its unused lease is dropped). These are what aotproxy:res:{replica} should hold:
// StoreResync sets the store's parts to them after an outage or an empty restart, so a settlement
// the store never got leaves nothing counted for ever, and requests in flight across an empty
// restart count again (docs/CLUSTER.md, "Redis down and back; Redis restarted empty").
// A lone binary has none: SharedTenantLimits exists only with [cluster].
internal sealed class HeldParts
{
    private readonly ConcurrentDictionary<string, HeldTenant> _tenants = new(StringComparer.Ordinal);

    // The worker slots this replica holds (SharedWorkerSlots' workers; none without shared slots).
    public Func<IEnumerable<SharedWorker>> Workers { get; set; } = static () => [];

    public void Take(in SharedDemand demand) => For(demand.Tenant).Add(demand, +1);

    public void Release(in SharedDemand demand) => For(demand.Tenant).Add(demand, -1);

    // Places in flight leased (+) or given back (-) by the tenant's lease (TenantLease): what the
    // store counts for this replica is the places leased, used or not.
    public void Lease(string tenant, long places) => For(tenant).Lease(places);

    // The leases are dropped before a reconcile copies the parts (SharedTenantLimits sets it).
    public Action DropLeases { get; set; } = static () => { };

    // Every part as the field of aotproxy:res:{replica} that holds it, with the amount held (0
    // included: a part the store holds beyond it goes).
    public List<(RedisValue Field, long Amount)> Parts()
    {
        var parts = new List<(RedisValue, long)>();
        foreach (var held in _tenants.Values)
        {
            var place = "t|" + held.Tenant + "|";
            parts.Add((place + "in_flight", Math.Max(held.InFlight, 0)));
            parts.Add((place + "budget_reserved", Math.Max(held.Tokens, 0)));
            parts.Add((place + "usd_reserved_nanos", Math.Max(held.Nanos, 0)));
        }

        foreach (var worker in Workers())
        {
            parts.Add((worker.Field, Math.Max(worker.DropLease(), 0)));
        }

        return parts;
    }

    private HeldTenant For(string tenant) =>
        _tenants.TryGetValue(tenant, out var held) ? held : _tenants.GetOrAdd(tenant, static name => new HeldTenant(name));
}
