using System.Collections.Frozen;
using System.Text;

namespace AotProxy.Forwarding;

internal static class HeaderPolicy
{
    // RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the gateway sets itself.
    private static readonly FrozenSet<string> NotToUpstream = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer",
        "Proxy-Authorization", "Proxy-Authenticate", "Host", "Expect", "Content-Length",
        // The client's key is for the gateway; workers get their own api_key or nothing.
        "Authorization",
        // Responses are read for usage: ask the worker for identity encoding.
        "Accept-Encoding",
        "x-request-id",
        // Identity inputs, consumed here like Authorization (Identity/CallerResolver): whatever
        // sits behind a worker must never learn to trust a tenant a client named itself.
        "x-tenant", "x-customer-tier", "x-priority");

    // Response header names arrive as bytes from the worker; Content-Length is set by the relay.
    private static readonly byte[][] NotToClient = [.. new[]
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
        "proxy-authenticate", "x-request-id", "date", "server", "content-length",
    }.Select(Encoding.ASCII.GetBytes)];

    public static bool ForwardToUpstream(string name) => !NotToUpstream.Contains(name);

    public static bool ForwardToClient(ReadOnlySpan<byte> name)
    {
        foreach (var excluded in NotToClient)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(name, excluded))
            {
                return false;
            }
        }

        return true;
    }
}
