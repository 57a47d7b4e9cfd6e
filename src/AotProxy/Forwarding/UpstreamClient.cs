using System.Net;
using System.Net.Sockets;

namespace AotProxy.Forwarding;

// The control plane's HTTP client (model discovery, /metrics scrapes, health checks): requests are proxied over the Upstream/
// pools instead. The connect timeout is read per connection from the current config.
internal static class UpstreamClient
{
    public static HttpClient Create(Func<TimeSpan> connectTimeout)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            ConnectTimeout = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = true,
            ActivityHeadersPropagator = null,
            ConnectCallback = async (context, cancellationToken) =>
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(connectTimeout());
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, timeout.Token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // Each call brings its own timeout (a cancellation token); HttpClient's 100 s default would only get in the way.
        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }
}
