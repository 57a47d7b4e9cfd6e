using System.Buffers.Text;
using AotProxy.Upstream;

namespace AotProxy.Forwarding;

// A push-back's retry-after (RFC 9110 delay-seconds; an HTTP-date is rare from a worker and is
// read as none). Capped at 60 s: it only makes that worker look full for a while, and a worker
// must not talk itself out of the fleet for longer than a scrape or two would show.
internal static class RetryAfterHeader
{
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(60);

    public static TimeSpan Of(ResponseHead head)
    {
        foreach (var header in head.Headers)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(head.Name(header), "retry-after"u8))
            {
                return Utf8Parser.TryParse(head.Value(header), out uint seconds, out var consumed) && consumed == head.Value(header).Length
                    ? TimeSpan.FromSeconds(Math.Min(seconds, Max.TotalSeconds))
                    : TimeSpan.Zero;
            }
        }

        return TimeSpan.Zero;
    }
}
