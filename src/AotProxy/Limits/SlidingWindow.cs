namespace AotProxy.Limits;

// A per-minute limit over a sliding window: what was taken in the last 61 one-second bins
// (this second and the 60 before it) never exceeds the limit. Every real 60 s interval lies
// within some 61 consecutive bins, so no 60 s interval ever holds more than the limit: the
// guarantee a token bucket alone does not give (a full bucket plus a minute of refill lets
// through up to twice the limit in one minute). TokenBucket keeps OpenAI's refill semantics;
// MinuteLimit asks both.
//
// Lock-free and allocation-free. Each bin is one long: the second it holds (the low 32 bits of
// the clock's second: 136 years before it wraps), a sealed bit and a 31-bit count (a limit is
// at most 10^9 < 2^31). Takes in the current second all go through one word, so the
// CompareExchange that adds a take also decides it: the count it replaces is exact. The 60
// earlier bins change only downwards (give-backs), so their sum is computed once per second and
// cached (_previous). Computing it seals those bins first: a take that read the clock late and
// still aims at an older second finds its bin sealed, reads the clock again and lands in the
// current bin, so the cached sum never misses a take.
internal sealed class SlidingWindow
{
    // Bins in the window: this second and the 60 before it.
    public const int WindowSeconds = 61;

    private const int Slots = 64; // a power of two above WindowSeconds: slot = second & 63
    private const int CountBits = 31;
    private const long CountMask = (1L << CountBits) - 1;
    private const long SealedBit = 1L << CountBits;
    private const int TagShift = 32;
    private const long TagMask = uint.MaxValue;
    private const long ValidBit = SealedBit; // in _previous: a sum is cached

    private readonly TimeProvider _time;
    private readonly long _frequency;
    private readonly long[] _bins = new long[Slots];
    private long _previous; // the tag of the second it is for << 32 | ValidBit | the sum of the 60 bins before it (at most CountMask)
    private long _limit;

    public SlidingWindow(long limit, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, TokenBucket.MaxCapacity);
        _limit = limit;
        _time = time;
        _frequency = time.TimestampFrequency;
        // Every bin starts empty, as an older second than any this window will see.
        Array.Fill(_bins, Pack(SecondOf(time.GetTimestamp()) - Slots, 0));
    }

    // A reload may change the limit; the bins carry over, so the last minute is not forgotten.
    public long Limit
    {
        get => Volatile.Read(ref _limit);
        set => Volatile.Write(ref _limit, value);
    }

    // The second a timestamp of this window's clock falls in: what a take returns and a give-back names.
    public long SecondOf(long timestamp) => timestamp / _frequency;

    // Takes n if the window holds them at `now` (a timestamp of this window's clock). `second`
    // is the bin it went to, for a give-back.
    public bool TryTake(long n, long now, out long second)
    {
        second = SecondOf(now);
        if (n <= 0)
        {
            return true;
        }

        var limit = Limit;
        if (n > limit)
        {
            return false;
        }

        while (true)
        {
            ref var bin = ref OpenBin(ref second, out var seen, out var count);
            if (PreviousSum(second) + count + n > limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref bin, Pack(second, count + n), seen) == seen)
            {
                return true;
            }
        }
    }

    // Adds n whether or not the window holds them: usage above a reservation is owed.
    public void Charge(long n)
    {
        if (n <= 0)
        {
            return;
        }

        var second = SecondOf(_time.GetTimestamp());
        while (true)
        {
            ref var bin = ref OpenBin(ref second, out var seen, out var count);
            if (Interlocked.CompareExchange(ref bin, Pack(second, Math.Min(count + n, CountMask)), seen) == seen)
            {
                return;
            }
        }
    }

    // Returns n taken in `second`. Once that bin has left the window there is nothing to return.
    // A sealed bin stays sealed; the cached sum of the earlier bins keeps counting what it held
    // until the next second recomputes it (conservative by less than a second).
    public void GiveBack(long n, long second)
    {
        if (n <= 0)
        {
            return;
        }

        ref var bin = ref _bins[second & (Slots - 1)];
        var seen = Volatile.Read(ref bin);
        while (Age(seen, second) == 0)
        {
            var count = Math.Max((seen & CountMask) - n, 0);
            var found = Interlocked.CompareExchange(ref bin, (seen & ~CountMask) | count, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    // What a take could get now (never negative).
    public long Remaining
    {
        get
        {
            var second = SecondOf(_time.GetTimestamp());
            return Math.Max(Limit - PreviousSum(second) - CountIn(second), 0);
        }
    }

    // Taken within the window now.
    public long Used => Math.Min(Limit, Limit - Remaining);

    // How long until n fit, as bins leave the window (zero: now). For n above the limit: until
    // the window is empty, the most a wait can bring.
    public TimeSpan TimeUntil(long n) => TimeUntil(n, Limit);

    // The same against a lower limit: a replica's share of it while the cluster store is down
    // (Cluster/StoreDownPolicy).
    public TimeSpan TimeUntil(long n, long limit)
    {
        var now = _time.GetTimestamp();
        var second = SecondOf(now);
        var excess = Math.Max(CountsSince(second - WindowSeconds + 1, second) + Math.Min(n, limit) - limit, 0);
        if (excess == 0)
        {
            return TimeSpan.Zero;
        }

        // Bin s leaves the window when second s + 61 begins.
        for (var s = second - WindowSeconds + 1; s <= second; s++)
        {
            excess -= CountIn(s);
            if (excess <= 0)
            {
                return Until((s + WindowSeconds) * _frequency - now);
            }
        }

        return Until((second + WindowSeconds) * _frequency - now);
    }

    // What each second of the window holds now, by age (0: this second, up to 60), into counts
    // (at least WindowSeconds long): what a cluster replica re-charges into the fleet-wide
    // window when the store returns (Cluster/StoreResync).
    public void CopyCounts(Span<long> counts)
    {
        var second = SecondOf(_time.GetTimestamp());
        for (var age = 0; age < WindowSeconds; age++)
        {
            counts[age] = CountIn(second - age);
        }
    }

    // How long until the window is empty (every bin with a take has left it).
    public TimeSpan TimeUntilEmpty()
    {
        var now = _time.GetTimestamp();
        var second = SecondOf(now);
        for (var s = second; s > second - WindowSeconds; s--)
        {
            if (CountIn(s) > 0)
            {
                return Until((s + WindowSeconds) * _frequency - now);
            }
        }

        return TimeSpan.Zero;
    }

    // The bin an add at `second` goes to, with what it holds now (0 for a bin of an older second,
    // 64 s or more ago, which the add overwrites). A sealed bin, or one a later caller already
    // took over, moves `second` on to the clock's current second.
    private ref long OpenBin(ref long second, out long seen, out long count)
    {
        while (true)
        {
            ref var bin = ref _bins[second & (Slots - 1)];
            seen = Volatile.Read(ref bin);
            var age = Age(seen, second);
            if (age > 0 || (age == 0 && (seen & SealedBit) == 0))
            {
                count = age == 0 ? seen & CountMask : 0;
                return ref bin;
            }

            second = Later(second);
        }
    }

    // The sum of the 60 bins before `second`, cached per second. The first caller in a second
    // seals those bins (so no late take can still add to them) and sums what they hold.
    private long PreviousSum(long second)
    {
        var cached = Volatile.Read(ref _previous);
        if ((cached & ValidBit) != 0 && (cached >>> TagShift) == Tag(second))
        {
            return cached & CountMask;
        }

        long sum = 0;
        for (var s = second - WindowSeconds + 1; s < second; s++)
        {
            sum += Seal(s);
        }

        // Above the largest limit, the sum blocks every take the same: it is kept capped.
        sum = Math.Min(sum, CountMask);
        Interlocked.CompareExchange(ref _previous, (Tag(second) << TagShift) | ValidBit | sum, cached);
        return sum;
    }

    // Seals the bin of `second` and returns what it holds (0 for a bin holding an older second).
    // A bin already holding a later second is left alone: this caller read the clock long ago.
    private long Seal(long second)
    {
        ref var bin = ref _bins[second & (Slots - 1)];
        var seen = Volatile.Read(ref bin);
        while (true)
        {
            var age = Age(seen, second);
            if (age < 0)
            {
                return 0;
            }

            var sealedValue = age == 0 ? seen | SealedBit : Pack(second, 0) | SealedBit;
            if (sealedValue == seen)
            {
                return seen & CountMask;
            }

            var found = Interlocked.CompareExchange(ref bin, sealedValue, seen);
            if (found == seen)
            {
                return sealedValue & CountMask;
            }

            seen = found;
        }
    }

    private long CountIn(long second)
    {
        var value = Volatile.Read(ref _bins[second & (Slots - 1)]);
        return Age(value, second) == 0 ? value & CountMask : 0;
    }

    private long CountsSince(long first, long last)
    {
        long sum = 0;
        for (var s = first; s <= last; s++)
        {
            sum += CountIn(s);
        }

        return sum;
    }

    // A take aimed at a sealed bin: the clock has moved past that second for someone, so it has
    // for this caller too (the clock is monotonic).
    private long Later(long second) => Math.Max(SecondOf(_time.GetTimestamp()), second + 1);

    private static long Tag(long second) => second & TagMask;

    // How many seconds the bin's second lies before `second`: 0 the same second, above 0 an
    // older one, below 0 a later one (another caller read the clock later: this caller's second
    // is stale). Tags are compared modulo 2^32, which holds for seconds less than 68 years apart.
    private static long Age(long value, long second) => (int)(uint)(Tag(second) - (value >>> TagShift));

    private static long Pack(long second, long count) => (Tag(second) << TagShift) | count;

    private TimeSpan Until(long ticks) =>
        ticks <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)((Int128)ticks * TimeSpan.TicksPerSecond / _frequency));
}
