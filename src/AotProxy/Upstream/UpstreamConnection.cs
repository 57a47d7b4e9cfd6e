using System.Net.Security;
using System.Net.Sockets;
using AotProxy.Hosting.Epoll;

namespace AotProxy.Upstream;

// One keep-alive HTTP/1.1 connection to a worker: a socket, a pipe reading from it, and the
// reusable per-response state (head, body reader, activity timer). Used by one request at a
// time; the pool hands it out and takes it back. With server.transport = "epoll" a plain-HTTP
// connection is an EpollStream on an epoll loop (no .NET Socket); TLS stays on .NET's sockets.
internal sealed class UpstreamConnection : IAsyncDisposable
{
    private readonly Socket? _socket; // null: on an epoll loop
    private readonly bool _plain;     // _socket without TLS: set non-blocking, a request is first sent on it directly
    private readonly Stream _stream;
    private readonly CancellationTokenSource _activity = new();
    private int _disposed;

    private UpstreamConnection(Socket? socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        if (socket is not null && stream is NetworkStream)
        {
            // After the NetworkStream (whose constructor refuses a non-blocking socket): its async
            // reads and writes do not depend on it, and a send on the socket returns at once.
            socket.Blocking = false;
            _plain = true;
        }

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
    public static async ValueTask<UpstreamConnection> ConnectAsync(UpstreamEndpoint endpoint, EpollClientLoops? loops, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connect.CancelAfter(timeout);
        if (loops is not null && !endpoint.UseTls)
        {
            return new UpstreamConnection(null, await EpollStream.ConnectAsync(loops.Pick(), endpoint.Host, endpoint.Port, connect.Token).ConfigureAwait(false));
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint.Host, endpoint.Port, connect.Token).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: false);
            if (endpoint.UseTls)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = endpoint.Host }, connect.Token).ConfigureAwait(false);
                stream = tls;
            }

            return new UpstreamConnection(socket, stream);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // A request that fits the socket's send buffer (nearly all: the buffer is ≥ 16 KiB) goes out in
    // one non-blocking send, without the event args a .NET socket allocates for its first async send
    // and keeps for its life, a few hundred bytes on every upstream connection, so on every stream
    // (perf/RESULTS.md, issue 22, third pass); the rest, if any, is written as before.
    public ValueTask SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        if (_plain && !cancellationToken.IsCancellationRequested)
        {
            var sent = _socket!.Send(bytes.Span, SocketFlags.None, out var error);
            if (error is not (SocketError.Success or SocketError.WouldBlock))
            {
                // As NetworkStream reports it: the forwarder's retry on a new connection sees the same.
                return ValueTask.FromException(new IOException($"Unable to write data to the transport connection: {error}.", new SocketException((int)error)));
            }

            if (sent == bytes.Length)
            {
                return ValueTask.CompletedTask;
            }

            bytes = bytes[sent..];
        }

        return _stream.WriteAsync(bytes, cancellationToken);
    }

    // A connection idle in the pool for a while may have been closed by the worker: a readable
    // socket with nothing asked of it means EOF (or garbage), either way not reusable.
    public bool LooksAlive() => _stream is EpollStream epoll ? epoll.LooksAlive() : !_socket!.Poll(0, SelectMode.SelectRead);

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
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket?.Dispose();
    }
}
