using System.Text;
using AotProxy.Upstream;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Forwarding;

// Copies a worker's response head onto the client's response: status, Content-Length (unless
// the relay changes the body's length), and the end-to-end headers. The values vLLM and nginx
// actually send come from a table of strings, so a typical response decodes nothing.
// x-ratelimit-* and x-gateway-* headers the gateway has already set (tenant limits, timings) win
// over the worker's.
// A header whose value Kestrel cannot send byte for byte (a non-ASCII or control byte) is
// dropped, never transcoded, and never allowed to fail the response (issue 14, item 2).
internal static class ResponseHeaders
{
    private static readonly string[] KnownValues =
    [
        "application/json",
        "text/event-stream; charset=utf-8",
        "text/event-stream",
        "application/json; charset=utf-8",
        "text/plain; charset=utf-8",
    ];

    private static readonly byte[][] KnownValueBytes = [.. KnownValues.Select(Encoding.ASCII.GetBytes)];

    private static ReadOnlySpan<byte> RateLimitPrefix => "x-ratelimit-"u8;

    private static ReadOnlySpan<byte> GatewayPrefix => "x-gateway-"u8;

    // Returns which of the head's headers went onto the response (bit i: head.Headers[i]; at most
    // ResponseHead.MaxHeaders = 100 of them), for Revert.
    public static UInt128 Apply(HttpResponse response, ResponseHead head, bool keepContentLength)
    {
        response.StatusCode = head.StatusCode;
        if (keepContentLength && head.Framing == BodyFraming.ContentLength)
        {
            response.ContentLength = head.ContentLength;
        }

        var headers = response.Headers;
        var applied = UInt128.Zero;
        var all = head.Headers;
        for (var i = 0; i < all.Length; i++)
        {
            var name = head.Name(all[i]);
            var bytes = head.Value(all[i]);
            if (!HeaderPolicy.ForwardToClient(name) || !HeaderPolicy.IsRelayable(bytes) || (head.ConnectionOptions && IsConnectionOption(head, name)))
            {
                continue;
            }

            var value = Text(bytes);
            if (Ascii.EqualsIgnoreCase(name, "content-type"u8))
            {
                response.ContentType = value;
            }
            else
            {
                var key = Encoding.Latin1.GetString(name);
                if ((HasPrefix(name, RateLimitPrefix) || HasPrefix(name, GatewayPrefix)) && headers.ContainsKey(key))
                {
                    // The gateway's own tenant limits (Http/RateLimitHeaders) are what the
                    // client is held to; a worker's limits on the gateway's key would contradict them.
                    // Its x-gateway-* timings (Http/TimingHeaders) are this gateway's, not a
                    // gateway's behind it.
                    continue;
                }

                headers.Append(key, value);
            }

            applied |= UInt128.One << i;
        }

        return applied;
    }

    // Takes back what Apply put on a response that has not started: the worker failed before
    // any byte of its answer reached the client, which then gets another worker's answer or the
    // gateway's error, with the gateway's own headers (x-request-id, x-ratelimit-*) only.
    public static void Revert(HttpResponse response, ResponseHead head, UInt128 applied)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentLength = null;
        var all = head.Headers;
        for (var i = 0; i < all.Length; i++)
        {
            if ((applied & (UInt128.One << i)) == 0)
            {
                continue;
            }

            var name = head.Name(all[i]);
            if (Ascii.EqualsIgnoreCase(name, "content-type"u8))
            {
                response.ContentType = null;
            }
            else
            {
                response.Headers.Remove(Encoding.Latin1.GetString(name));
            }
        }
    }

    private static bool HasPrefix(ReadOnlySpan<byte> name, ReadOnlySpan<byte> prefix) =>
        name.Length > prefix.Length && Ascii.EqualsIgnoreCase(name[..prefix.Length], prefix);

    private static bool IsConnectionOption(ResponseHead head, ReadOnlySpan<byte> name)
    {
        foreach (ref readonly var header in head.Headers)
        {
            if (Ascii.EqualsIgnoreCase(head.Name(header), "connection"u8) && HeaderPolicy.IsNamedBy(head.Value(header), name))
            {
                return true;
            }
        }

        return false;
    }

    private static string Text(ReadOnlySpan<byte> value)
    {
        for (var i = 0; i < KnownValueBytes.Length; i++)
        {
            if (value.SequenceEqual(KnownValueBytes[i]))
            {
                return KnownValues[i];
            }
        }

        return Encoding.Latin1.GetString(value);
    }
}
