using System.Globalization;

namespace AotProxy.Http;

// A duration as the text of a response header, in milliseconds. Kestrel takes header values as
// strings; the values requests see (a wait under 10 s in whole ms, an overhead under 10 ms in
// µs) are formatted once each and kept, so a request in that range allocates nothing for them.
// 10,000 entries a table: 2 x 80 KB of references at most, filled as values are first seen.
internal static class MillisecondsText
{
    private const int Cached = 10_000;
    private const long TicksPerMicrosecond = TimeSpan.TicksPerMillisecond / 1000;

    private static readonly string?[] WholeTexts = new string?[Cached];
    private static readonly string?[] MicroTexts = new string?[Cached];

    // Whole milliseconds, rounded up: a wait of any length says at least 1, never less than it lasted.
    public static string Whole(TimeSpan elapsed)
    {
        var ms = elapsed <= TimeSpan.Zero ? 0 : (elapsed.Ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond;
        if (ms >= Cached)
        {
            return ms.ToString(CultureInfo.InvariantCulture);
        }

        // A race formats one value twice; both texts are equal, either may stay.
        return WholeTexts[ms] ??= ms.ToString(CultureInfo.InvariantCulture);
    }

    // Milliseconds with three decimals (whole microseconds, rounded up): "0.183".
    public static string Micros(TimeSpan elapsed)
    {
        var us = elapsed <= TimeSpan.Zero ? 0 : (elapsed.Ticks + TicksPerMicrosecond - 1) / TicksPerMicrosecond;
        if (us >= Cached)
        {
            return Format(us);
        }

        return MicroTexts[us] ??= Format(us);
    }

    private static string Format(long us) =>
        string.Create(CultureInfo.InvariantCulture, $"{us / 1000}.{us % 1000:000}");
}
