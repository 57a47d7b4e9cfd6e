using StackExchange.Redis;

namespace AotProxy.Cluster;

// One tenant's fleet-wide virtual token counter on one model, as this replica knows it (SharedVtc):
// the charges made here since the last flush (Pending), those of the flush on its way (Sent), the
// fleet's counter in its answer (Fleet), all in micro-tokens per weight, and the cost of the
// tenant's last settled request here (the grant rule's allowance).
internal sealed class SharedVtcTenant(string name)
{
    private long _pending;
    private long _sent;
    private long _fleet;
    private long _lastCost;

    public string Name { get; } = name;

    public RedisValue Field { get; } = name;

    // Its waiting count in the last flush: a tenant that stopped waiting is sent once more (HDEL).
    public int LastWaiting { get; set; }

    // The fleet's counter with this replica's charges that Redis has not answered for yet.
    public long Counter => Volatile.Read(ref _fleet) + Volatile.Read(ref _sent) + Volatile.Read(ref _pending);

    public long LastCost => Volatile.Read(ref _lastCost);

    public void Add(long micro) => Interlocked.Add(ref _pending, micro);

    public void Settled(long costMicro) => Volatile.Write(ref _lastCost, costMicro);

    // The flush takes what accrued (only the flush loop calls Take, Answered and Failed).
    public long Take()
    {
        var taken = Interlocked.Exchange(ref _pending, 0);
        Volatile.Write(ref _sent, taken);
        return taken;
    }

    public void Answered(long fleet)
    {
        Volatile.Write(ref _fleet, fleet);
        Volatile.Write(ref _sent, 0);
    }

    // Not known to have landed: charged again with the next flush (a reply lost after Redis ran
    // the script counts it twice; a charge is never lost).
    public void Failed()
    {
        Interlocked.Add(ref _pending, Interlocked.Exchange(ref _sent, 0));
    }
}
