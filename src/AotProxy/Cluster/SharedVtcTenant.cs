using StackExchange.Redis;

namespace AotProxy.Cluster;

// One tenant's fleet-wide virtual token counter on one model, as this replica knows it (SharedVtc):
// the charges made here since the last flush (Pending), those of the flush on its way (Sent), the
// fleet's counter in its answer (Fleet), all in micro-tokens per weight.
internal sealed class SharedVtcTenant(string name)
{
    private long _pending;
    private long _sent;
    private long _fleet;
    private int _queued;
    private int _forSlot;

    public string Name { get; } = name;

    public RedisValue Field { get; } = name;

    // Its waiting count in the last flush: a tenant that stopped waiting is sent once more (HDEL).
    public int LastWaiting { get; set; }

    // Its granted requests here waiting for their turn on the fleet's workers (SharedVtc.TakeTurnAsync).
    public int Queued => Volatile.Read(ref _queued);

    // Its requests here that took their turn and wait for a worker's slot fleet-wide: backlogged
    // too (a tenant whose requests all wait there is not idle, and must not be lifted as one).
    public int ForSlot => Volatile.Read(ref _forSlot);

    // The fleet's counter with this replica's charges that Redis has not answered for yet.
    public long Counter => Volatile.Read(ref _fleet) + Volatile.Read(ref _sent) + Volatile.Read(ref _pending);

    public void Add(long micro) => Interlocked.Add(ref _pending, micro);

    public void AddQueued(int delta) => Interlocked.Add(ref _queued, delta);

    public void AddForSlot(int delta) => Interlocked.Add(ref _forSlot, delta);

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
