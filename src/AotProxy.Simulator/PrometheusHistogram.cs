namespace AotProxy.Simulator;

// A cumulative Prometheus histogram. Observed from the engine loop, read by /metrics scrapes;
// a lock keeps buckets, count and sum consistent with each other within one scrape.
internal sealed class PrometheusHistogram(double[] upperBounds)
{
    private readonly Lock _gate = new();
    private readonly long[] _counts = new long[upperBounds.Length];
    private long _count;
    private double _sum;

    public IReadOnlyList<double> UpperBounds => upperBounds;

    public void Observe(double value)
    {
        lock (_gate)
        {
            var i = Array.BinarySearch(upperBounds, value);
            for (i = i < 0 ? ~i : i; i < _counts.Length; i++)
            {
                _counts[i]++;
            }

            _count++;
            _sum += value;
        }
    }

    public (long[] Cumulative, long Count, double Sum) Snapshot()
    {
        lock (_gate)
        {
            return ((long[])_counts.Clone(), _count, _sum);
        }
    }
}
