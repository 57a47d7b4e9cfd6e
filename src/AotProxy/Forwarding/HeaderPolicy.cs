using System.Buffers;
using System.Collections.Frozen;
using System.Text;
using Microsoft.Extensions.Primitives;

namespace AotProxy.Forwarding;

internal static class HeaderPolicy
{
    public const string ForwardedFor = "X-Forwarded-For";

    // RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the gateway sets itself.
    private static readonly FrozenSet<string> NotToUpstream = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer",
        "Proxy-Authorization", "Proxy-Authenticate", "Host", "Expect", "Content-Length",
        // The client's key is for the gateway; workers get their own api_key or nothing.
        "Authorization", Identity.CallerResolver.ApiKeyHeader,
        // Responses are read for usage: ask the worker for identity encoding.
        "Accept-Encoding",
        "x-request-id",
        // Identity inputs, consumed here like Authorization (Identity/CallerResolver): whatever
        // sits behind a worker must never learn to trust a tenant a client named itself.
        "x-tenant", "x-customer-tier", "x-priority",
        // Written by RequestHeadWriter itself: a trusted proxy's list with the peer appended.
        ForwardedFor);

    // What proxies say about the client's connection. Only a proxy in auth.trusted_sources may
    // say it; anyone else could name any address (and a worker's logs or rate limits would
    // believe it), so their copies are dropped.
    private static readonly FrozenSet<string> FromTrustedProxiesOnly = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port");

    // Response header names arrive as bytes from the worker; Content-Length is set by the relay.
    private static readonly byte[][] NotToClient = [.. new[]
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
        "proxy-authenticate", "x-request-id", "date", "server", "content-length",
    }.Select(Encoding.ASCII.GetBytes)];

    // RFC 9110 §5.5 field-value bytes that Kestrel writes as they are: HTAB, SP and VCHAR. It
    // refuses any other byte in a response header (obs-text and control bytes alike).
    private static readonly SearchValues<byte> RelayableValueBytes = SearchValues.Create(
        [(byte)'\t', .. Enumerable.Range(0x20, 0x7F - 0x20).Select(b => (byte)b)]);

    public static bool ForwardToUpstream(string name, bool trustedProxy) =>
        !NotToUpstream.Contains(name) && (trustedProxy || !FromTrustedProxiesOnly.Contains(name));

    // W3C trace context (traceparent, tracestate): with tracing on, the gateway's span replaces the
    // client's as the worker's parent; off, the client's pass through as any other header.
    public static bool IsTraceContext(string name) =>
        name.Equals("traceparent", StringComparison.OrdinalIgnoreCase) || name.Equals("tracestate", StringComparison.OrdinalIgnoreCase);

    public static bool ForwardToClient(ReadOnlySpan<byte> name)
    {
        foreach (var excluded in NotToClient)
        {
            if (Ascii.EqualsIgnoreCase(name, excluded))
            {
                return false;
            }
        }

        return true;
    }

    // A worker's header value the client can be given byte for byte. Any other value is dropped
    // with its header: Kestrel would refuse it, and transcoding would change what the worker said.
    public static bool IsRelayable(ReadOnlySpan<byte> value) => value.IndexOfAnyExcept(RelayableValueBytes) < 0;

    // RFC 9110 §7.6.1: the headers a Connection header names are for this hop only.
    public static bool IsNamedBy(StringValues connection, string name)
    {
        foreach (var value in connection)
        {
            var list = value.AsSpan();
            foreach (var range in list.Split(','))
            {
                if (list[range].Trim(" \t").Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    public static bool IsNamedBy(ReadOnlySpan<byte> connection, ReadOnlySpan<byte> name)
    {
        foreach (var range in connection.Split((byte)','))
        {
            if (Ascii.EqualsIgnoreCase(connection[range].Trim(" \t"u8), name))
            {
                return true;
            }
        }

        return false;
    }
}
