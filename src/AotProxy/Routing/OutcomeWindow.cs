namespace AotProxy.Routing;

// Outcomes over the last 10 seconds, some of them flagged (a worker's failures; the gateway's
// retries), or only counted (admission's grants, for Retry-After): ten one-second buckets, each a second number and a packed count
// (flagged << 32 | total), updated with Interlocked. A bucket that rolls over while another
// thread adds to it may lose that one count; a rate needs no more.
internal sealed class OutcomeWindow
{
    private const int Buckets = 10;

    private readonly long[] _second = new long[Buckets];
    private readonly long[] _counts = new long[Buckets];

    public void Record(bool flagged, long second)
    {
        var i = (int)(second % Buckets);
        var seen = Volatile.Read(ref _second[i]);
        if (seen != second && Interlocked.CompareExchange(ref _second[i], second, seen) == seen)
        {
            Interlocked.Exchange(ref _counts[i], 0);
        }

        Interlocked.Add(ref _counts[i], flagged ? (1L << 32) | 1 : 1);
    }

    // Flagged over all outcomes in the window; 0 with none.
    public double Rate(long second)
    {
        var (flagged, total) = Counts(second);
        return total == 0 ? 0 : (double)flagged / total;
    }

    // All outcomes in the window, per second.
    public double PerSecond(long second) => Counts(second).Total / (double)Buckets;

    public (long Flagged, long Total) Counts(long second)
    {
        long flagged = 0, total = 0;
        for (var i = 0; i < Buckets; i++)
        {
            var at = Volatile.Read(ref _second[i]);
            if (at > second - Buckets && at <= second)
            {
                var counts = Volatile.Read(ref _counts[i]);
                flagged += counts >>> 32;
                total += counts & 0xFFFF_FFFF;
            }
        }

        return (flagged, total);
    }
}
