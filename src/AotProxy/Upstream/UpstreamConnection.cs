using System.Net.Security;
using AotProxy.Hosting;
using AotProxy.Hosting.Epoll;

namespace AotProxy.Upstream;

// One keep-alive HTTP/1.1 connection to a worker: a transport (an epoll loop's EpollStream with
// server.transport = "epoll", else .NET's SocketStream; IUpstreamTransport), TLS over it when the
// worker's URL says so, a pipe reading from it, and the reusable per-response state (head, body
// reader, activity timer). Used by one request at a time; the pool hands it out and takes it back.
internal sealed class UpstreamConnection : IAsyncDisposable
{
    private readonly IUpstreamTransport _transport;
    private readonly Stream _stream; // the transport, or an SslStream over it
    private readonly bool _tls;
    private readonly CancellationTokenSource _activity = new();
    private int _disposed;

    private UpstreamConnection(IUpstreamTransport transport, Stream stream, bool tls)
    {
        _transport = transport;
        _stream = stream;
        _tls = tls;
        Reader = new ConnectionReader(stream);
    }

    public ConnectionReader Reader { get; }

    public ResponseHead Head { get; } = new();

    public BodyReader Body { get; } = new();

    // True once the connection has carried a request: a failure before any response byte may
    // then be the worker having closed it while idle, and the request can go again on a new one.
    public bool Reused { get; set; }

    public long IdleSince { get; set; }

    // The epoll loop that reads this connection; null on .NET's sockets (TLS, or server.transport = "sockets").
    public EpollLoop? Loop => (_stream as EpollStream)?.Loop;

    // Cancelled when the upstream is silent too long or the client goes away.
    public CancellationTokenSource Activity => _activity;

    // loops: where a plain-HTTP connection goes (server.transport = "epoll"); null: .NET sockets.
    // clientLoop: the loop of the client connection the request came on, if any.
    public static async ValueTask<UpstreamConnection> ConnectAsync(UpstreamEndpoint endpoint, EpollClientLoops? loops, EpollLoop? clientLoop, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connect.CancelAfter(timeout);
        if (loops is not null && !endpoint.UseTls)
        {
            var epoll = await EpollStream.ConnectAsync(loops.Pick(clientLoop), endpoint.Host, endpoint.Port, connect.Token).ConfigureAwait(false);
            return new UpstreamConnection(epoll, epoll, tls: false);
        }

        var socket = await SocketStream.ConnectAsync(endpoint.Host, endpoint.Port, connect.Token).ConfigureAwait(false);
        if (!endpoint.UseTls)
        {
            return new UpstreamConnection(socket, socket, tls: false);
        }

        var tls = new SslStream(socket, leaveInnerStreamOpen: false); // TLS workers stay on .NET's sockets
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = endpoint.Host }, connect.Token).ConfigureAwait(false);
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new UpstreamConnection(socket, tls, tls: true);
    }

    // A request that fits the socket's send buffer (nearly all: the buffer is >= 16 KiB) goes out
    // in one send on the transport, from the calling thread (IUpstreamTransport.SendNow); the rest,
    // if any, and every TLS request, is written through the stream.
    public ValueTask SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        if (!_tls && !cancellationToken.IsCancellationRequested)
        {
            int sent;
            try
            {
                sent = _transport.SendNow(bytes.Span);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                return ValueTask.FromException(ex);
            }

            if (sent == bytes.Length)
            {
                return ValueTask.CompletedTask;
            }

            bytes = bytes[sent..];
        }

        return _stream.WriteAsync(bytes, cancellationToken);
    }

    // A connection idle in the pool for a while may have been closed by the worker.
    public bool LooksAlive() => _transport.LooksAlive();

    // Ready for the next request: the timer is stopped, the per-response state cleared.
    public bool TryResetForReuse()
    {
        Head.Clear();
        Body.Release();
        return _activity.TryReset();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Head.Clear();
        Body.Release();
        _activity.Dispose();
        await Reader.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false); // the transport with it, and its socket
    }
}
