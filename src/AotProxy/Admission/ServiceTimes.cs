namespace AotProxy.Admission;

// The recent median request duration (admission to release), which sets the priority policy's
// aging interval: a multiple of the median adapts to the fleet and the workload, where a fixed
// constant is too slow for 100 ms embeddings and too fast for 2-minute generations.
internal sealed class ServiceTimes
{
    private const int Samples = 64;
    private readonly double[] _seconds = new double[Samples];
    private int _next;
    private int _count;
    private double _median;
    private long _computedAt;
    private int _computed;

    public void Add(double seconds)
    {
        if (!(seconds >= 0) || double.IsInfinity(seconds))
        {
            return;
        }

        var index = (int)((uint)(Interlocked.Increment(ref _next) - 1) % Samples);
        Volatile.Write(ref _seconds[index], seconds);
        if (Volatile.Read(ref _count) < Samples)
        {
            Interlocked.Increment(ref _count);
        }
    }

    // 0 until the first sample. Recomputed at most once per `every` (64 doubles sorted: ~1 µs).
    public double Median(long now, long every)
    {
        if (Volatile.Read(ref _computed) == 1 && now - Volatile.Read(ref _computedAt) < every)
        {
            return Volatile.Read(ref _median);
        }

        var count = Math.Min(Volatile.Read(ref _count), Samples);
        if (count == 0)
        {
            return 0;
        }

        Span<double> copy = stackalloc double[Samples];
        for (var i = 0; i < count; i++)
        {
            copy[i] = Volatile.Read(ref _seconds[i]);
        }

        var sorted = copy[..count];
        sorted.Sort();
        var median = count % 2 == 1 ? sorted[count / 2] : (sorted[(count / 2) - 1] + sorted[count / 2]) / 2;
        Volatile.Write(ref _median, median);
        Volatile.Write(ref _computedAt, now);
        Volatile.Write(ref _computed, 1);
        return median;
    }
}
