namespace AotProxy.Routing;

// A pool's conversations: session hash -> the pool index of the worker that served its last turn,
// and when. Bounded: 4,096 slots in 2-way sets, written on the hot path without a lock. A new
// session takes the way used longer ago, so an active conversation is not pushed out by one that
// went quiet; past 4,096 concurrent conversations the oldest lose their affinity (their next turn
// is placed by load and remembered again). A torn write can at worst misplace one turn.
internal sealed class SessionTable
{
    public const int Slots = 4096;

    private readonly ulong[] _hashes = new ulong[Slots];
    private readonly int[] _workers = new int[Slots];
    private readonly long[] _usedAt = new long[Slots];

    // The worker's pool index, or -1.
    public int Find(ulong hash)
    {
        var set = Set(hash);
        for (var slot = set; slot < set + 2; slot++)
        {
            if (Volatile.Read(ref _hashes[slot]) == hash)
            {
                return Volatile.Read(ref _workers[slot]);
            }
        }

        return -1;
    }

    public void Record(ulong hash, int worker, long now)
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
