using AotProxy.Hosting.Parking;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace AotProxy.Hosting;

// How one listener serves its endpoint: a new listener feature is a property here, not one more
// parameter of KestrelListener.StartAsync and of every caller. The defaults are a plain HTTP/1.1
// listener on .NET's sockets, as the simulator and the admin plane use.
public sealed record ListenerOptions
{
    public static ListenerOptions Default { get; } = new();

    // Cleartext: Kestrel cannot offer h2c on an endpoint that also speaks HTTP/1.1, so a listener
    // is one or the other (Http2 alone means h2c with prior knowledge).
    public HttpProtocols Protocols { get; init; } = HttpProtocols.Http1;

    public ListenerTransport Transport { get; init; } = ListenerTransport.Sockets;

    // Parks idle keep-alive connections (server.park_idle_after): an HTTP/1 matter, ignored otherwise.
    public ConnectionParking? Parking { get; init; }

    // Kestrel's limits beyond its defaults (the gateway's data plane: server.max_header_bytes,
    // server.max_connections).
    public Action<KestrelServerOptions>? Configure { get; init; }
}
