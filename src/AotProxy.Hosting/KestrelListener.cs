using System.Net;
using AotProxy.Hosting.Epoll;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AotProxy.Hosting;

// One raw Kestrel server bound to one endpoint and serving one RequestDelegate.
// The gateway runs two (data plane, admin plane); the simulator runs one per worker.
public sealed class KestrelListener : IAsyncDisposable
{
    private readonly KestrelServer _server;
    private int _stopped;

    private KestrelListener(KestrelServer server, IPEndPoint endPoint)
    {
        _server = server;
        EndPoint = endPoint;
    }

    // The bound endpoint: with port 0 in the request, this carries the port the OS chose.
    public IPEndPoint EndPoint { get; }

    public Uri BaseUri => new($"http://{FormatHost(EndPoint)}/");

    // Throws ListenFailedException when the address cannot be bound.
    public static async Task<KestrelListener> StartAsync(
        IPEndPoint endPoint,
        RequestDelegate handler,
        ILoggerFactory loggerFactory,
        ListenerOptions? listenerOptions = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(handler);
        var listener = listenerOptions ?? ListenerOptions.Default;
        var options = new KestrelServerOptions
        {
            AddServerHeader = false,
            ApplicationServices = new ServiceCollection().BuildServiceProvider(),
        };
        // Bodies are bounded by the handler itself (server.max_request_bytes), so Kestrel's own
        // 30 MB cap is switched off to avoid two limits. Headers keep Kestrel's limits (32 KiB in
        // all, 8 KiB request line) unless the listener's Configure sets others, as the gateway's
        // data plane does (server.max_header_bytes, server.max_connections).
        options.Limits.MaxRequestBodySize = null;
        var protocols = listener.Protocols;
        var parking = protocols == HttpProtocols.Http1 ? listener.Parking : null;
        options.Listen(endPoint, listen => listen.Protocols = protocols);
        listener.Configure?.Invoke(options);

        var transport = CreateTransport(listener.Transport, loggerFactory);
        if (parking is not null)
        {
            transport = parking.Wrap(transport, options.Limits, loggerFactory);
        }

        var server = new KestrelServer(Options.Create(options), transport, loggerFactory);
        try
        {
            await server.StartAsync(new DelegateApplication(handler, parking is not null), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ListenFailedException.ReasonOf(ex) is { } reason)
        {
            server.Dispose();
            throw new ListenFailedException(endPoint, reason, setting: null, ex);
        }

        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        var bound = address is null ? endPoint : new IPEndPoint(endPoint.Address, new Uri(address).Port);
        return new KestrelListener(server, bound);
    }

    // Inline scheduling, either way: the request delegate runs on the thread that read the
    // request instead of being queued again; the handlers never block, which this requires.
    private static IConnectionListenerFactory CreateTransport(ListenerTransport transport, ILoggerFactory loggerFactory) => transport == ListenerTransport.Epoll
        ? new EpollTransportFactory()
        : new SocketTransportFactory(Options.Create(new SocketTransportOptions { UnsafePreferInlineScheduling = true }), loggerFactory);

    // Graceful: stop accepting, let in-flight requests finish until the token fires, then abort the rest.
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await _server.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await StopAsync(cts.Token).ConfigureAwait(false);
        _server.Dispose();
    }

    private static string FormatHost(IPEndPoint endPoint) =>
        endPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{endPoint.Address}]:{endPoint.Port}"
            : $"{endPoint.Address}:{endPoint.Port}";
}
