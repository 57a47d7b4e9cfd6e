using System.Collections.Frozen;

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
        "x-request-id");

    private static readonly FrozenSet<string> NotToClient = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "TE", "Trailer",
        "Proxy-Authenticate", "x-request-id", "Date", "Server");

    public static bool ForwardToUpstream(string name) => !NotToUpstream.Contains(name);

    public static bool ForwardToClient(string name) => !NotToClient.Contains(name);

    public static bool IsContentHeader(string name) => name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase);
}
