using System.Globalization;

namespace AotProxy.Limits;

// Durations as OpenAI's x-ratelimit-reset-* headers and messages write them (Go's
// time.Duration format): "120ms" below a second, else "1s", "6m0s", "1h2m3.5s", to the ms.
internal static class ResetDuration
{
    public static string Format(TimeSpan duration)
    {
        // Up to the next millisecond: a client that waits what it is told must find the tokens there.
        var ms = (long)Math.Ceiling(duration.TotalMilliseconds);
        if (ms <= 0)
        {
            return "0s";
        }

        if (ms < 1000)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ms}ms");
        }

        var hours = ms / 3_600_000;
        var minutes = ms / 60_000 % 60;
        var seconds = ms % 60_000 / 1000.0;
        var text = seconds.ToString("0.###", CultureInfo.InvariantCulture);
        return hours > 0 ? string.Create(CultureInfo.InvariantCulture, $"{hours}h{minutes}m{text}s")
            : minutes > 0 ? string.Create(CultureInfo.InvariantCulture, $"{minutes}m{text}s")
            : text + "s";
    }

    // Retry-After: whole seconds, rounded up, at least 1.
    public static int RetryAfterSeconds(TimeSpan wait) => (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 1, int.MaxValue);
}
