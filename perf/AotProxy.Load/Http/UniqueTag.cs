using System.Globalization;

namespace AotProxy.Load.Http;

// The first characters of a unique user message: "<run>-<request> ", both in hex. The run part is
// random per runner, so that a second run against the same, still warm simulators does not hit
// the blocks the first run left in their prefix caches.
internal static class UniqueTag
{
    // 8 + 1 + 8 + 1. Past 2^32 requests of one entry the request part wraps (about 100 days at 500/s).
    public const int Length = 18;

    public static string Format(uint run, long request) =>
        string.Create(CultureInfo.InvariantCulture, $"{run:x8}-{(uint)request:x8} ");
}
