using System.Numerics;

namespace AotProxy.Load.Recording;

// An HDR-style histogram of microseconds, 0 µs .. 60 s, 3 significant digits, fixed memory
// (17,408 counters = 136 KiB). Values below 2048 have a bucket each (exact); above, each power of
// two is split into 1024 equal sub-buckets, so a bucket is at most 1/1024 of its value wide and
// any reported percentile is within 0.05% of a recorded value (the bucket's midpoint is
// reported). Recording is lock-free (Interlocked), so request completions on any thread share
// one histogram; merging adds counters.
internal sealed class Histogram
{
    public const long HighestTrackable = 60_000_000; // 60 s in µs

    // 2048 = 2 * 10^3 rounded up to a power of two: the resolution 3 significant digits need.
    private const int LinearCount = 2048;
    private const int SubBucketBits = 10; // 1024 sub-buckets per power of two above LinearCount
    private const int SubBucketCount = 1 << SubBucketBits;

    // The last bucket holds HighestTrackable: 2^25 <= 6e7 < 2^26.
    private static readonly int BucketCount = IndexOf(HighestTrackable) + 1;

    private readonly long[] _counts = new long[BucketCount];
    private long _count;
    private long _sum;
    private long _max;
    private long _min = long.MaxValue;

    public long Count => Volatile.Read(ref _count);

    public long Max => Count == 0 ? 0 : Volatile.Read(ref _max);

    public long Min => Count == 0 ? 0 : Volatile.Read(ref _min);

    public double Mean => Count == 0 ? 0 : (double)Volatile.Read(ref _sum) / Count;

    // Negative values count as 0 and values above 60 s as 60 s: a latency beyond the range is
    // still a request that happened, and must show in the count.
    public void Record(long microseconds)
    {
        var value = Math.Clamp(microseconds, 0, HighestTrackable);
        Interlocked.Increment(ref _counts[IndexOf(value)]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sum, value);
        Atomic.Max(ref _max, value);
        Atomic.Min(ref _min, value);
    }

    public void Add(Histogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Count == 0)
        {
            return;
        }

        for (var i = 0; i < _counts.Length; i++)
        {
            var count = Volatile.Read(ref other._counts[i]);
            if (count != 0)
            {
                Interlocked.Add(ref _counts[i], count);
            }
        }

        Interlocked.Add(ref _count, other.Count);
        Interlocked.Add(ref _sum, Volatile.Read(ref other._sum));
        Atomic.Max(ref _max, other.Max);
        Atomic.Min(ref _min, other.Min);
    }

    // The value at percentile p (0 < p <= 100): the recorded value of rank ceil(p/100 * count),
    // to 3 significant digits; 0 when nothing was recorded.
    public long ValueAtPercentile(double percentile)
    {
        var count = Count;
        if (count == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(Math.Clamp(percentile, 0, 100) / 100 * count);
        rank = Math.Clamp(rank, 1, count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += Volatile.Read(ref _counts[i]);
            if (seen >= rank)
            {
                // The midpoint halves the error; the exact extremes are known.
                return Math.Clamp(MidpointOf(i), Min, Max);
            }
        }

        return Max;
    }

    // How many recorded values are at or above microseconds (to the histogram's precision).
    public long CountAtOrAbove(long microseconds)
    {
        long total = 0;
        for (var i = IndexOf(Math.Clamp(microseconds, 0, HighestTrackable)); i < _counts.Length; i++)
        {
            total += Volatile.Read(ref _counts[i]);
        }

        return total;
    }

    public HistogramSummary Summarize() => new(
        ValueAtPercentile(50),
        ValueAtPercentile(90),
        ValueAtPercentile(99),
        ValueAtPercentile(99.9),
        Max,
        Math.Round(Mean, 1),
        Count);

    internal static int IndexOf(long value)
    {
        if (value < LinearCount)
        {
            return (int)value;
        }

        // shift: how far value must move right to land in [1024, 2048).
        var shift = BitOperations.Log2((ulong)value) - SubBucketBits;
        return LinearCount + ((shift - 1) * SubBucketCount) + (int)((value >> shift) - SubBucketCount);
    }

    internal static long LowestOf(int index)
    {
        if (index < LinearCount)
        {
            return index;
        }

        var shift = ((index - LinearCount) / SubBucketCount) + 1;
        var sub = (index - LinearCount) % SubBucketCount;
        return (long)(SubBucketCount + sub) << shift;
    }

    internal static long MidpointOf(int index)
    {
        if (index < LinearCount)
        {
            return index;
        }

        var shift = ((index - LinearCount) / SubBucketCount) + 1;
        return LowestOf(index) + ((1L << shift) / 2);
    }
}
