using System.Collections.Immutable;

namespace AotProxy.Admission;

// A model pool's slots: how many exist (the routable workers' max_concurrency), how many are
// taken, and for the bucket policy how many each bucket is guaranteed and has taken. Every take
// is a compare-and-swap below a bound, so concurrent admissions never overshoot.
internal sealed class SlotBook
{
    public const int Unbucketed = -1;

    private readonly int[] _usedByBucket = new int[AdmissionLimits.MaxLevels];
    private readonly Lock _resizeLock = new();
    private volatile int[] _guaranteed = [];
    private ImmutableArray<double> _shares = [];
    private int _capacity;
    private int _used;

    public int Capacity => Volatile.Read(ref _capacity);

    public int Used => Volatile.Read(ref _used);

    public int Free => Math.Max(0, Capacity - Used);

    public double Utilization => Capacity == 0 ? 1.0 : (double)Used / Capacity;

    public int UsedBy(int bucket) => Volatile.Read(ref _usedByBucket[bucket]);

    public int Guaranteed(int bucket)
    {
        var guaranteed = _guaranteed;
        return bucket < guaranteed.Length ? guaranteed[bucket] : 0;
    }

    // Called per admission with the pool's current capacity; recomputes the guarantees only
    // when capacity or shares changed (a worker went down, a reload).
    public void Resize(int capacity, ImmutableArray<double> shares)
    {
        if (capacity == Volatile.Read(ref _capacity) && shares == _shares)
        {
            return;
        }

        lock (_resizeLock)
        {
            _guaranteed = Apportion(capacity, shares);
            _shares = shares;
            Volatile.Write(ref _capacity, capacity);
        }
    }

    public bool TryTake() => TryIncrementBelow(ref _used, Capacity);

    // One of the pool's slots, charged to no bucket (the policies without buckets).
    public bool TryTake(out int slotBucket)
    {
        slotBucket = Unbucketed;
        return TryTake();
    }

    // One of `bucket`'s guaranteed slots (and one of the pool's).
    public bool TryTakeBucket(int bucket)
    {
        if (!TryIncrementBelow(ref _usedByBucket[bucket], Guaranteed(bucket)))
        {
            return false;
        }

        if (TryIncrementBelow(ref _used, Capacity))
        {
            return true;
        }

        Interlocked.Decrement(ref _usedByBucket[bucket]);
        return false;
    }

    public void Release(int slotBucket)
    {
        if (slotBucket != Unbucketed)
        {
            Interlocked.Decrement(ref _usedByBucket[slotBucket]);
        }

        Interlocked.Decrement(ref _used);
    }

    // Largest remainder: the guarantees add up to exactly the capacity.
    internal static int[] Apportion(int capacity, ImmutableArray<double> shares)
    {
        var result = new int[shares.Length];
        if (shares.IsEmpty)
        {
            return result;
        }

        Span<double> remainders = stackalloc double[shares.Length];
        var given = 0;
        for (var i = 0; i < shares.Length; i++)
        {
            var exact = shares[i] * capacity;
            result[i] = (int)Math.Floor(exact);
            remainders[i] = exact - result[i];
            given += result[i];
        }

        for (; given < capacity; given++)
        {
            var best = 0;
            for (var i = 1; i < remainders.Length; i++)
            {
                if (remainders[i] > remainders[best])
                {
                    best = i;
                }
            }

            result[best]++;
            remainders[best] = -1;
        }

        return result;
    }

    private static bool TryIncrementBelow(ref int counter, int bound)
    {
        var seen = Volatile.Read(ref counter);
        while (seen < bound)
        {
            var found = Interlocked.CompareExchange(ref counter, seen + 1, seen);
            if (found == seen)
            {
                return true;
            }

            seen = found;
        }

        return false;
    }
}
