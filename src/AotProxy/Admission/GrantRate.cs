namespace AotProxy.Admission;

// Slots granted per second over the last 10 s, for Retry-After: a client told to come back
// when the requests ahead of it should have been served. Per-second buckets, lock-free; a
// bucket is reset by the first grant of a new second (a lost increment costs nothing here).
internal sealed class GrantRate
{
    private const int Seconds = 10;
    private readonly long[] _second = new long[Seconds];
    private readonly int[] _count = new int[Seconds];

    public void Count(long second)
    {
        var slot = (int)(second % Seconds);
        if (Volatile.Read(ref _second[slot]) != second)
        {
            Volatile.Write(ref _count[slot], 0);
            Volatile.Write(ref _second[slot], second);
        }

        Interlocked.Increment(ref _count[slot]);
    }

    public double PerSecond(long second)
    {
        var total = 0;
        for (var i = 0; i < Seconds; i++)
        {
            var at = Volatile.Read(ref _second[i]);
            if (at > second - Seconds && at <= second)
            {
                total += Volatile.Read(ref _count[i]);
            }
        }

        return total / (double)Seconds;
    }
}
