namespace AotProxy.Routing;

// A model's conversations: session hash -> the worker that served its last turn, and when. It
// outlives its pool (WorkerSet hands it to the next pool of the model), so a reload or a discovery
// that rebuilds the pools does not forget a conversation. Bounded: 4,096 slots in 2-way sets, written on the hot path without a lock. A new
// session takes the way used longer ago, so an active conversation is not pushed out by one that
// went quiet; past 4,096 concurrent conversations the oldest lose their affinity (their next turn
// is placed by load and remembered again). A torn write can at worst misplace one turn.
internal sealed class SessionTable
{
    public const int Slots = 4096;

    private readonly ulong[] _hashes = new ulong[Slots];
    private readonly WorkerState?[] _workers = new WorkerState?[Slots];
    private readonly long[] _usedAt = new long[Slots];

    // The worker, or null.
    public WorkerState? Find(ulong hash)
    {
        var set = Set(hash);
        for (var slot = set; slot < set + 2; slot++)
        {
            if (Volatile.Read(ref _hashes[slot]) == hash)
            {
                return Volatile.Read(ref _workers[slot]);
            }
        }

        return null;
    }

    public void Record(ulong hash, WorkerState worker, long now)
    {
        var set = Set(hash);
        var slot = Volatile.Read(ref _hashes[set]) == hash ? set
            : Volatile.Read(ref _hashes[set + 1]) == hash ? set + 1
            : Volatile.Read(ref _usedAt[set]) <= Volatile.Read(ref _usedAt[set + 1]) ? set : set + 1;
        Volatile.Write(ref _workers[slot], worker);
        Volatile.Write(ref _usedAt[slot], now);
        Volatile.Write(ref _hashes[slot], hash);
    }

    private static int Set(ulong hash) => (int)(StableHash.Mix(hash) & (Slots - 2));
}
