using System.Text;
using AotProxy.Upstream;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Forwarding;

// Copies a worker's response head onto the client's response: status, Content-Length (unless
// the relay changes the body's length), and the end-to-end headers. The values vLLM and nginx
// actually send come from a table of strings, so a typical response decodes nothing.
// x-ratelimit-* headers the gateway has already set (tenant limits) win over the worker's.
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

    public static void Apply(HttpResponse response, ResponseHead head, bool keepContentLength)
    {
        response.StatusCode = head.StatusCode;
        if (keepContentLength && head.Framing == BodyFraming.ContentLength)
        {
            response.ContentLength = head.ContentLength;
        }

        var headers = response.Headers;
        foreach (ref readonly var header in head.Headers)
        {
            var name = head.Name(header);
            if (!HeaderPolicy.ForwardToClient(name))
            {
                continue;
            }

            var value = Text(head.Value(header));
            if (Ascii.EqualsIgnoreCase(name, "content-type"u8))
            {
                response.ContentType = value;
            }
            else
            {
                var key = Encoding.Latin1.GetString(name);
                if (name.Length > RateLimitPrefix.Length && Ascii.EqualsIgnoreCase(name[..RateLimitPrefix.Length], RateLimitPrefix) && headers.ContainsKey(key))
                {
                    // The gateway's own tenant limits (Limits/RateLimitResponse) are what the
                    // client is held to; a worker's limits on the gateway's key would contradict them.
                    continue;
                }

                headers.Append(key, value);
            }
        }
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
