using AotProxy.Configuration;

namespace AotProxy.Limits;

// A per-minute limit as a token bucket: capacity = the limit, refilled at limit/60 per second
// (OpenAI's semantics). Kept as GCRA (the generic cell rate algorithm), the token bucket in one
// number: _tat, the "theoretical arrival time" in TimeProvider ticks at which the bucket would
// be full again. Tokens now = (window - (max(_tat, now) - now)) / ticks per token, so refill is
// lazy (no timer), and a take or a give-back is one CompareExchange on one long (no lock, no
// allocation, no torn pair of fields to keep consistent).
//
// Costs are whole ticks, rounded down per call (never per token): a take of n tokens costs
// floor(n * window / capacity) ticks, so rounding gives away less than one tick per request.
internal sealed class TokenBucket
{
    // ConfigValidator caps rpm and tpm here, so that n * remainder (n <= capacity, remainder
    // < capacity) stays within a long.
    public const long MaxCapacity = LimitsModel.MaxPerMinute;

    private readonly TimeProvider _time;
    private readonly long _window;        // 60 s in ticks: the time a full refill takes
    private readonly long _ticksPerToken; // window / capacity, whole ticks
    private readonly long _remainder;     // window % capacity
    private long _tat;

    // `used`: tokens already taken (a bucket resized on reload carries them over); 0 = full.
    public TokenBucket(long capacity, TimeProvider time, long used = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, MaxCapacity);
        _time = time;
        Capacity = capacity;
        _window = 60 * time.TimestampFrequency;
        _ticksPerToken = _window / capacity;
        _remainder = _window % capacity;
        _tat = time.GetTimestamp() + Cost(Math.Clamp(used, 0, capacity));
        CapacityText = capacity.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public long Capacity { get; }

    // The capacity as a header value, formatted once.
    public string CapacityText { get; }

    // Takes n tokens if the bucket holds them now. n above the capacity never fits.
    public bool TryTake(long n) => TryTake(n, _time.GetTimestamp());

    // The same at a timestamp of this bucket's clock: one clock read serves a tenant's RPM and
    // TPM buckets (a read costs ~28 ns here, most of a take; perf/RESULTS.md).
    public bool TryTake(long n, long now)
    {
        if (n <= 0)
        {
            return true;
        }

        if (n > Capacity)
        {
            return false;
        }

        var cost = Cost(n);
        var seen = Volatile.Read(ref _tat);
        while (true)
        {
            var next = Math.Max(seen, now) + cost;
            if (next - now > _window)
            {
                return false;
            }

            var found = Interlocked.CompareExchange(ref _tat, next, seen);
            if (found == seen)
            {
                return true;
            }

            seen = found;
        }
    }

    // Takes n tokens whether or not the bucket holds them: usage above a reservation is owed,
    // and the debt delays the next takes.
    public void Charge(long n) => Settle(0, n);

    // Returns n tokens taken earlier. The bucket never holds more than its capacity: a _tat in
    // the past reads as full.
    public void GiveBack(long n) => Move(Cost(Math.Clamp(n, 0, Capacity)), charge: false);

    // Settles a take of `reserved` tokens (at most the capacity, as every take) to the `used`
    // ones: the bucket then holds what a take of `used` would have left it, to the tick. A
    // give-back of the difference alone could keep one tick too many (each call rounds down on
    // its own; one tick short of a token reads as a token less). Usage above the reservation is
    // owed, up to one window of debt beyond it.
    public void Settle(long reserved, long used)
    {
        reserved = Math.Clamp(reserved, 0, Capacity);
        var ticks = Cost(Math.Clamp(used, 0, reserved + Capacity)) - Cost(reserved);
        if (ticks != 0)
        {
            Move(Math.Abs(ticks), charge: ticks > 0);
        }
    }

    // Tokens in the bucket now; 0 while it owes (never negative).
    public long Remaining
    {
        get
        {
            var now = _time.GetTimestamp();
            var used = Math.Max(Volatile.Read(ref _tat), now) - now;
            return used >= _window ? 0 : (long)((Int128)(_window - used) * Capacity / _window);
        }
    }

    // Tokens taken and not yet refilled; what a resized bucket carries over.
    public long Used => Capacity - Remaining;

    // How long until n tokens are in the bucket (zero: now). For n above the capacity: until
    // it is full, the most a wait can bring.
    public TimeSpan TimeUntil(long n)
    {
        var now = _time.GetTimestamp();
        var ready = Math.Max(Volatile.Read(ref _tat), now) + Cost(Math.Min(n, Capacity)) - _window;
        return Ticks(ready - now);
    }

    // How long until the bucket is full again (OpenAI's x-ratelimit-reset-*).
    public TimeSpan TimeUntilFull()
    {
        var now = _time.GetTimestamp();
        return Ticks(Volatile.Read(ref _tat) - now);
    }

    // Moves _tat by `cost` ticks. Beyond the capacity a give-back changes nothing (the bucket
    // tops out); the callers cap a charge at one window of debt, which also keeps the arithmetic
    // in range.
    private void Move(long cost, bool charge)
    {
        if (cost <= 0)
        {
            return;
        }

        var now = _time.GetTimestamp();
        var seen = Volatile.Read(ref _tat);
        while (true)
        {
            // A give-back stops at full (now), and never moves a _tat that already reads as full.
            var next = charge ? Math.Max(seen, now) + cost : Math.Max(seen - cost, Math.Min(seen, now));
            var found = Interlocked.CompareExchange(ref _tat, next, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    // n <= 2 x Capacity: n * _remainder < 2 x Capacity^2 <= 2 x 10^18, within a long.
    private long Cost(long n) => n * _ticksPerToken + (_remainder == 0 ? 0 : n * _remainder / Capacity);

    private TimeSpan Ticks(long ticks) =>
        ticks <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks((long)((Int128)ticks * TimeSpan.TicksPerSecond / _time.TimestampFrequency));
}
