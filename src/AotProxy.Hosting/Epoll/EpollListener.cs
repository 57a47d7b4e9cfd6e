using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace AotProxy.Hosting.Epoll;

// A bound, listening socket on the first epoll loop: on EPOLLIN it accepts until EAGAIN and
// hands each connection to the loops in turn. Kestrel takes them from AcceptAsync.
internal sealed class EpollListener : IConnectionListener, IEpollHandler
{
    private readonly Socket _socket;
    private readonly int _fd;
    private readonly EpollLoop[] _loops;
    private readonly Channel<EpollConnection> _accepted = Channel.CreateUnbounded<EpollConnection>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource _unbound = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ulong _token;
    private IPEndPoint? _local;
    private int _next;
    private int _unbinding;

    private EpollListener(Socket socket, EpollLoop[] loops)
    {
        _socket = socket;
        _fd = (int)socket.SafeHandle.DangerousGetHandle();
        _loops = loops;
        EndPoint = socket.LocalEndPoint!;
    }

    public EndPoint EndPoint { get; }

    // Binds with a .NET socket (the errors are the SocketExceptions the socket transport
    // throws: "address in use" reads the same), then serves it on `loopCount` new loops.
    public static EpollListener Bind(IPEndPoint endPoint, int loopCount, int backlog)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.Bind(endPoint);
            socket.Listen(backlog);
            socket.Blocking = false; // accept4 until EAGAIN
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var loops = new EpollLoop[loopCount];
        for (var i = 0; i < loops.Length; i++)
        {
            loops[i] = new EpollLoop($"epoll {endPoint.Port} #{i}");
        }

        var listener = new EpollListener(socket, loops);
        loops[0].Post(static s => ((EpollListener)s).Register(), listener);
        return listener;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            while (await _accepted.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_accepted.Reader.TryRead(out var connection))
                {
                    return connection;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return null;
    }

    // Stops accepting: the listening socket leaves the loop and closes; accepted connections
    // Kestrel has not taken yet are closed.
    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbinding, 1) == 0)
        {
            _loops[0].Post(static s => ((EpollListener)s).UnbindOnLoop(), this);
        }

        await _unbound.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        while (_accepted.Reader.TryRead(out var connection))
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    // Kestrel disposes a listener after its connections: the loops can stop.
    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        foreach (var loop in _loops)
        {
            await loop.StopAsync().ConfigureAwait(false);
        }
    }

    public unsafe void OnEvents(uint events)
    {
        var address = stackalloc byte[SocketAddressReader.Size];
        while (true)
        {
            var length = SocketAddressReader.Size;
            var fd = EpollNative.Accept4(_fd, address, &length, EpollNative.SockNonBlock | EpollNative.SockCloexec);
            if (fd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is EpollNative.EIntr or EpollNative.EConnAborted)
                {
                    continue;
                }

                return; // EAGAIN: all taken; EMFILE and the like: the next connection retries
            }

            var remote = SocketAddressReader.Read(new ReadOnlySpan<byte>(address, length));
            var localLength = SocketAddressReader.Size;
            var local = EpollNative.GetSockName(fd, address, &localLength) == 0
                ? SocketAddressReader.Read(new ReadOnlySpan<byte>(address, localLength))
                : null;
            if (local is not null && local.Equals(_local))
            {
                local = _local; // one instance for the connections to one address (~80 B each otherwise, kept while parked)
            }
            else
            {
                _local = local;
            }

            var noDelay = 1;
            EpollNative.SetSockOpt(fd, EpollNative.IpProtoTcp, EpollNative.TcpNoDelay, &noDelay, sizeof(int));
            var connection = new EpollConnection(_loops[_next++ % _loops.Length], fd, local, remote);
            connection.Start();
            _accepted.Writer.TryWrite(connection);
        }
    }

    private void Register() => _token = _loops[0].Register(_fd, this, EpollNative.EpollIn | EpollNative.EpollEt);

    private void UnbindOnLoop()
    {
        _loops[0].Unregister(_fd, _token);
        _socket.Dispose();
        _accepted.Writer.TryComplete();
        _unbound.TrySetResult();
    }
}
