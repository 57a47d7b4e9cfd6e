namespace AotProxy.Limits;

// A tenant's RPM or TPM: a token bucket (OpenAI's semantics: capacity = the limit, refilled
// continuously, which the x-ratelimit-* headers describe) and a sliding window (no 60 s ever
// holds more than the limit, which the bucket alone allows up to twice over). A take needs
// both; what a refusal took from the bucket goes back at once.
internal sealed class MinuteLimit
{
    private readonly TokenBucket _bucket;
    private readonly SlidingWindow _window;

    // `previous`: the same tenant's limit before a reload changed it. Its bucket's tokens used
    // carry over into the new bucket, and its window goes on with the new limit, so a reload
    // neither hands out a fresh minute nor forgets one.
    public MinuteLimit(long limit, TimeProvider time, MinuteLimit? previous = null)
    {
        _bucket = new TokenBucket(limit, time, previous?._bucket.Used ?? 0);
        _window = previous?._window ?? new SlidingWindow(limit, time);
        _window.Limit = limit;
    }

    public long Capacity => _bucket.Capacity;

    // The limit as a header value, formatted once.
    public string CapacityText => _bucket.CapacityText;

    // Takes n at `now` (a timestamp of this limit's clock, shared by a tenant's RPM and TPM).
    public bool TryTake(long n, long now)
    {
        if (!_bucket.TryTake(n, now))
        {
            return false;
        }

        if (!_window.TryTake(n, now, out _))
        {
            _bucket.GiveBack(n);
            return false;
        }

        return true;
    }

    // Settles a take of `reserved` at `takenAt` to the `used` ones: both then hold exactly `used`
    // for it. Usage above the reservation is owed.
    public void Settle(long reserved, long used, long takenAt)
    {
        _bucket.Settle(reserved, used);
        if (used < reserved)
        {
            _window.GiveBack(reserved - used, _window.SecondOf(takenAt));
        }
        else
        {
            _window.Charge(used - reserved);
        }
    }

    // Returns n taken at `takenAt` (the `now` of the take).
    public void GiveBack(long n, long takenAt)
    {
        _bucket.GiveBack(n);
        _window.GiveBack(n, _window.SecondOf(takenAt));
    }

    public long Remaining => Math.Min(_bucket.Remaining, _window.Remaining);

    public long Used => Capacity - Remaining;

    // The sliding window alone (the bucket refills, the window counts): what this replica took
    // in the last 61 s, against a share of the limit while the cluster store is down
    // (Cluster/StoreDownPolicy), and re-charged when it returns (Cluster/StoreResync).
    public long WindowUsed => _window.Used;

    public TimeSpan WindowTimeUntil(long n, long limit) => _window.TimeUntil(n, limit);

    public void CopyWindowCounts(Span<long> counts) => _window.CopyCounts(counts);

    // How long until n could be taken: the later of the two.
    public TimeSpan TimeUntil(long n)
    {
        var bucket = _bucket.TimeUntil(n);
        var window = _window.TimeUntil(n);
        return bucket > window ? bucket : window;
    }

    // How long until the limit is back to its initial state (OpenAI's x-ratelimit-reset-*).
    public TimeSpan TimeUntilFull()
    {
        var bucket = _bucket.TimeUntilFull();
        var window = _window.TimeUntilEmpty();
        return bucket > window ? bucket : window;
    }
}
