using AotProxy.Configuration;

namespace AotProxy.Forwarding;

// Exponential backoff with jitter: before retry n (1-based), a random delay in [d/2, d] with
// d = min(backoff_max, backoff_base × 2^(n-1)). The jitter keeps clients that failed together
// from retrying together.
internal static class Backoff
{
    public static TimeSpan Delay(int retry, RetryModel retries, Random random)
    {
        var exponent = Math.Min(retry - 1, 20);
        var ceiling = Math.Min(retries.BackoffMax.Ticks, retries.BackoffBase.Ticks * (1L << exponent));
        return TimeSpan.FromTicks((ceiling / 2) + (long)(random.NextDouble() * (ceiling / 2)));
    }
}
