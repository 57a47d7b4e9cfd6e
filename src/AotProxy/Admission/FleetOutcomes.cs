namespace AotProxy.Admission;

// One class's requests to a model pool over the last protection_window, in ten buckets of a tenth of it: per
// bucket its number, the requests (failed << 32 | total) and the first tokens' count and summed
// microseconds, updated with Interlocked and never allocating. A bucket that rolls over while
// another thread adds to it may lose that one sample; a rate and a mean need no more.
internal sealed class FleetOutcomes
{
    public const int Buckets = 10;

    private readonly long[] _bucket = new long[Buckets];
    private readonly long[] _requests = new long[Buckets];
    private readonly long[] _firstTokens = new long[Buckets];
    private readonly long[] _ttftMicros = new long[Buckets];

    // ttftMicros: the request's first token, or -1 without one (a failure, a JSON answer).
    public void Record(long bucket, bool failed, long ttftMicros)
    {
        var i = (int)(bucket % Buckets);
        var seen = Volatile.Read(ref _bucket[i]);
        if (seen != bucket && Interlocked.CompareExchange(ref _bucket[i], bucket, seen) == seen)
        {
            Interlocked.Exchange(ref _requests[i], 0);
            Interlocked.Exchange(ref _firstTokens[i], 0);
            Interlocked.Exchange(ref _ttftMicros[i], 0);
        }

        Interlocked.Add(ref _requests[i], failed ? (1L << 32) | 1 : 1);
        if (ttftMicros >= 0)
        {
            Interlocked.Increment(ref _firstTokens[i]);
            Interlocked.Add(ref _ttftMicros[i], ttftMicros);
        }
    }

    // The buckets from `first` to `last`, both included (at most the last ten).
    public FleetSample Sum(long first, long last)
    {
        var sample = default(FleetSample);
        for (var i = 0; i < Buckets; i++)
        {
            var at = Volatile.Read(ref _bucket[i]);
            if (at >= first && at <= last && at > last - Buckets)
            {
                var requests = Volatile.Read(ref _requests[i]);
                sample += new FleetSample(requests >>> 32, requests & 0xFFFF_FFFF, Volatile.Read(ref _firstTokens[i]), Volatile.Read(ref _ttftMicros[i]));
            }
        }

        return sample;
    }
}
