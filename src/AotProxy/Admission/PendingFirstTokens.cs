namespace AotProxy.Admission;

// The arrivals of one class's streamed requests that hold a slot and still await their first
// token: the first tokens that have not come are evidence too, by their age (ClassProtection).
// A fixed set of slots taken and given back with Interlocked: no lock, nothing allocated. When all
// are taken a newcomer goes untracked; the oldest are held already, so the oldest age is still
// known, or a lower bound of it.
internal sealed class PendingFirstTokens
{
    public const int Slots = 64;

    private readonly long[] _arrivals = new long[Slots]; // 0: free
    private int _next;

    // The slot the arrival took, or -1 (all taken).
    public int Add(long arrivedAt)
    {
        arrivedAt = Math.Max(arrivedAt, 1);
        var start = Interlocked.Increment(ref _next);
        for (var i = 0; i < Slots; i++)
        {
            var slot = (start + i) & (Slots - 1);
            if (Volatile.Read(ref _arrivals[slot]) == 0 && Interlocked.CompareExchange(ref _arrivals[slot], arrivedAt, 0) == 0)
            {
                return slot;
            }
        }

        return -1;
    }

    public void Remove(int slot) => Volatile.Write(ref _arrivals[slot], 0);

    // The summed ages at `now` of the arrivals still awaiting their first token, and how many.
    public long Ages(long now, out int count)
    {
        var (sum, n) = (0L, 0);
        for (var i = 0; i < Slots; i++)
        {
            var arrival = Volatile.Read(ref _arrivals[i]);
            if (arrival != 0)
            {
                (sum, n) = (sum + Math.Max(now - arrival, 0), n + 1);
            }
        }

        count = n;
        return sum;
    }

    // How many of the arrivals still awaiting their first token came before `cutoff`, and (count) how many await.
    public int ArrivedBefore(long cutoff, out int count)
    {
        var (before, n) = (0, 0);
        for (var i = 0; i < Slots; i++)
        {
            var arrival = Volatile.Read(ref _arrivals[i]);
            if (arrival != 0)
            {
                (before, n) = (arrival < cutoff ? before + 1 : before, n + 1);
            }
        }

        count = n;
        return before;
    }

    // The earliest arrival still awaiting its first token; 0: none.
    public long Oldest()
    {
        var oldest = long.MaxValue;
        for (var i = 0; i < Slots; i++)
        {
            var arrival = Volatile.Read(ref _arrivals[i]);
            if (arrival != 0 && arrival < oldest)
            {
                oldest = arrival;
            }
        }

        return oldest == long.MaxValue ? 0 : oldest;
    }
}
