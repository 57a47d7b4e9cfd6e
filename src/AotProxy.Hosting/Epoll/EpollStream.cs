using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace AotProxy.Hosting.Epoll;

// An outgoing TCP connection on an epoll loop: the upstream side of server.transport = "epoll".
// Non-blocking from connect(2) on, edge-triggered. A read calls recv only after readiness: at
// once when EPOLLIN has been seen since the queue was last found empty, else the read waits and
// the loop thread itself does the recv when EPOLLIN comes, and completes the read there, so the
// relay that awaits it runs on that loop (no hop). A zero-byte read waits for readiness and
// touches no buffer (ConnectionReader's wait before it rents one). A write sends from the
// caller's thread until EAGAIN, then waits for EPOLLOUT. One read and one write at a time.
internal sealed class EpollStream : Stream, IUpstreamTransport, IEpollHandler, IValueTaskSource<int>
{
    private readonly EpollLoop _loop;
    private readonly int _fd;
    private readonly Lock _gate = new();
    private ManualResetValueTaskSourceCore<int> _read; // continuations inline: on the loop, for the relay
    private ulong _token;
    private bool _registered; // loop thread only

    // Under _gate. The sequence numbers count readiness events (written on the loop thread only):
    // a caller that found the queue empty gives up readiness only if none came since it looked.
    private int _readEvents;
    private int _writeEvents;
    private bool _readReady;
    private bool _peerClosed;
    private bool _closed;
    private Exception? _failed;
    private bool _readPending;
    private Memory<byte> _readBuffer;
    private CancellationToken _readCancellation;
    private CancellationTokenRegistration _readRegistration;
    private TaskCompletionSource? _writeWaiter;

    private EpollStream(EpollLoop loop, int fd)
    {
        _loop = loop;
        _fd = fd;
    }

    public EpollLoop Loop => _loop;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    // Connects to each address of `host` in turn (the first that accepts wins), on `loop`.
    // Failures are SocketExceptions, as Socket.ConnectAsync throws them.
    public static async ValueTask<EpollStream> ConnectAsync(EpollLoop loop, string host, int port, CancellationToken cancellationToken)
    {
        var addresses = IPAddress.TryParse(host, out var literal)
            ? new[] { literal }
            : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        SocketException? last = null;
        foreach (var address in addresses)
        {
            if (address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            {
                continue;
            }

            var stream = Open(loop, new IPEndPoint(address, port));
            try
            {
                // EPOLLOUT (or EPOLLERR) says the handshake is over; SO_ERROR says how it went.
                await stream.WaitWritableAsync(0, cancellationToken).ConfigureAwait(false);
                stream.ThrowIfConnectFailed();
                return stream;
            }
            catch (SocketException ex)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                last = ex;
            }
            catch
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    // IUpstreamTransport: a close the loop has seen answers without a syscall; else one peek asks
    // the kernel (the pool probes only after a second idle).
    public unsafe bool LooksAlive()
    {
        int events;
        lock (_gate)
        {
            if (_closed || _peerClosed)
            {
                return false;
            }

            events = _readEvents;
        }

        byte probe;
        if (EpollNative.Recv(_fd, &probe, 1, EpollNative.MsgPeek) >= 0 || Marshal.GetLastPInvokeError() != EpollNative.EAgain)
        {
            return false;
        }

        GiveUpReadReadiness(events);
        return true;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            int events;
            lock (_gate)
            {
                if (_closed)
                {
                    return ValueTask.FromException<int>(new ObjectDisposedException(nameof(EpollStream)));
                }

                if (!_readReady)
                {
                    break;
                }

                if (buffer.IsEmpty)
                {
                    return new(0);
                }

                events = _readEvents;
            }

            var n = TryReceive(buffer.Span, out var error);
            if (n >= 0)
            {
                if (n < buffer.Length)
                {
                    GiveUpReadReadiness(events); // a short TCP read emptied the queue
                }

                return new(n);
            }

            if (error is not null)
            {
                return ValueTask.FromException<int>(error);
            }

            GiveUpReadReadiness(events); // EAGAIN
        }

        return WaitToRead(buffer, cancellationToken);
    }

    // IUpstreamTransport: sends from the caller's thread until EAGAIN (WriteAsync then waits for EPOLLOUT).
    public int SendNow(ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
        }

        return Send(bytes);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int events;
        lock (_gate)
        {
            if (_closed)
            {
                return ValueTask.FromException(new ObjectDisposedException(nameof(EpollStream)));
            }

            events = _writeEvents;
        }

        var sent = Send(buffer.Span);
        return sent == buffer.Length ? ValueTask.CompletedTask : WriteRestAsync(buffer[sent..], events, cancellationToken);
    }

    // Loop thread.
    public void OnEvents(uint events)
    {
        TaskCompletionSource? writer = null;
        var claimed = false;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            if ((events & (EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
            {
                _peerClosed = true;
            }

            if ((events & (EpollNative.EpollIn | EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
            {
                _readEvents++;
                _readReady = true;
                claimed = _readPending;
                _readPending = false;
            }

            if ((events & (EpollNative.EpollOut | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
            {
                _writeEvents++;
                writer = _writeWaiter;
                _writeWaiter = null;
            }
        }

        if (claimed)
        {
            ReceivePending();
        }

        writer?.TrySetResult();
    }

    public int GetResult(short token) => _read.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _read.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(continuation, state, token, flags);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    // A waiting read or write fails; the fd leaves the loop and closes on the loop's thread.
    protected override void Dispose(bool disposing)
    {
        bool claimed;
        TaskCompletionSource? writer;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            claimed = _readPending;
            _readPending = false;
            writer = _writeWaiter;
            _writeWaiter = null;
        }

        if (claimed)
        {
            CompleteRead(0, new ObjectDisposedException(nameof(EpollStream)));
        }

        writer?.TrySetException(new ObjectDisposedException(nameof(EpollStream)));
        _loop.Post(static s => ((EpollStream)s).CloseOnLoop(), this);
        base.Dispose(disposing);
    }

    private static EpollStream Open(EpollLoop loop, IPEndPoint endPoint)
    {
        var family = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? EpollNative.AfInet6 : EpollNative.AfInet;
        var fd = EpollNative.Socket(family, EpollNative.SockStream | EpollNative.SockNonBlock | EpollNative.SockCloexec, 0);
        if (fd < 0)
        {
            throw Error(Marshal.GetLastPInvokeError());
        }

        unsafe
        {
            var noDelay = 1;
            EpollNative.SetSockOpt(fd, EpollNative.IpProtoTcp, EpollNative.TcpNoDelay, &noDelay, sizeof(int));
            var address = stackalloc byte[SocketAddressReader.Size];
            var length = SocketAddressWriter.Write(endPoint, new Span<byte>(address, SocketAddressReader.Size));
            if (EpollNative.Connect(fd, address, length) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != EpollNative.EInProgress)
            {
                EpollNative.Close(fd);
                throw Error(errno);
            }
        }

        var stream = new EpollStream(loop, fd);
        loop.Post(static s => ((EpollStream)s).Register(), stream);
        return stream;
    }

    private static SocketException Error(int errno) => new((int)(errno switch
    {
        EpollNative.EConnRefused => SocketError.ConnectionRefused,
        EpollNative.ETimedOut => SocketError.TimedOut,
        EpollNative.EConnReset => SocketError.ConnectionReset,
        101 => SocketError.NetworkUnreachable,
        113 => SocketError.HostUnreachable,
        _ => SocketError.SocketError,
    }));

    private unsafe void ThrowIfConnectFailed()
    {
        var error = 0;
        var length = sizeof(int);
        if (EpollNative.GetSockOpt(_fd, EpollNative.SolSocket, EpollNative.SoError, &error, &length) != 0)
        {
            error = Marshal.GetLastPInvokeError();
        }

        if (error != 0)
        {
            throw Error(error);
        }
    }

    // Loop thread: joins the interest set; EPOLLOUT follows once the handshake is over.
    private void Register()
    {
        try
        {
            _token = _loop.Register(_fd, this, EpollNative.EpollIn | EpollNative.EpollOut | EpollNative.EpollRdHup | EpollNative.EpollEt);
            _registered = true;
        }
        catch (IOException ex)
        {
            TaskCompletionSource? writer;
            lock (_gate)
            {
                _failed = ex;
                writer = _writeWaiter;
                _writeWaiter = null;
            }

            writer?.TrySetException(ex);
        }
    }

    // Loop thread, after Dispose.
    private void CloseOnLoop()
    {
        if (_registered)
        {
            _registered = false;
            _loop.Unregister(-1, _token); // close(2) takes it out of the interest set
        }

        EpollNative.Close(_fd);
    }

    private void GiveUpReadReadiness(int eventsSeen)
    {
        lock (_gate)
        {
            if (_readEvents == eventsSeen && !_peerClosed)
            {
                _readReady = false;
            }
        }
    }

    // >= 0: bytes read (0: the peer closed); -1: EAGAIN (error null) or failed (error set).
    private unsafe int TryReceive(Span<byte> buffer, out Exception? error)
    {
        error = null;
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
            {
                n = EpollNative.Recv(_fd, p, buffer.Length, 0);
            }

            if (n >= 0)
            {
                return (int)n;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EpollNative.EIntr)
            {
                continue;
            }

            if (errno != EpollNative.EAgain)
            {
                error = new IOException($"recv failed: errno {errno}", Error(errno));
            }

            return -1;
        }
    }

    // The read waits for EPOLLIN. The cancellation is registered before the read is armed, and
    // checked again once it is: a cancellation in between is not lost.
    private ValueTask<int> WaitToRead(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static s => ((EpollStream)s!).CancelRead(), this)
            : default;
        lock (_gate)
        {
            if (!_closed && !_readReady && !cancellationToken.IsCancellationRequested)
            {
                _read.Reset();
                _readBuffer = buffer;
                _readCancellation = cancellationToken;
                _readRegistration = registration;
                _readPending = true;
                return new ValueTask<int>(this, _read.Version);
            }
        }

        // Readiness (or the cancellation, or Dispose) came meanwhile: no wait.
        registration.Unregister(); // a callback running now finds no read waiting
        return cancellationToken.IsCancellationRequested
            ? ValueTask.FromCanceled<int>(cancellationToken)
            : ReadAsync(buffer, cancellationToken);
    }

    // Loop thread, for the read it claimed: recv now that EPOLLIN is in. A stale event (its bytes
    // were read already) finds EAGAIN: the read waits again, unless it was cancelled meanwhile.
    private void ReceivePending()
    {
        var buffer = _readBuffer;
        if (buffer.IsEmpty)
        {
            CompleteRead(0, null);
            return;
        }

        var n = TryReceive(buffer.Span, out var error);
        if (n >= 0 || error is not null)
        {
            if (n >= 0 && n < buffer.Length)
            {
                GiveUpReadReadiness(_readEvents);
            }

            CompleteRead(n, error);
            return;
        }

        lock (_gate)
        {
            _readReady = _peerClosed;
            if (!_closed && !_readCancellation.IsCancellationRequested)
            {
                _readPending = true;
                return;
            }
        }

        CompleteRead(0, _closed ? new ObjectDisposedException(nameof(EpollStream)) : new OperationCanceledException(_readCancellation));
    }

    private void CancelRead()
    {
        lock (_gate)
        {
            if (!_readPending || !_readCancellation.IsCancellationRequested)
            {
                return; // not waiting, or a late callback of an earlier read's token
            }

            _readPending = false;
        }

        CompleteRead(0, new OperationCanceledException(_readCancellation));
    }

    // By whoever claimed the pending read. Inline continuation: the relay goes on on this thread.
    private void CompleteRead(int n, Exception? error)
    {
        var registration = _readRegistration;
        _readRegistration = default;
        _readBuffer = default;
        _readCancellation = default;
        registration.Unregister();
        if (error is null)
        {
            _read.SetResult(n);
        }
        else
        {
            _read.SetException(error);
        }
    }

    // Sends until EAGAIN; returns the bytes sent. EPIPE, ECONNRESET and the like throw IOException.
    private unsafe int Send(ReadOnlySpan<byte> buffer)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            nint n;
            fixed (byte* p = buffer[total..])
            {
                n = EpollNative.Send(_fd, p, buffer.Length - total, EpollNative.MsgNoSignal);
            }

            if (n >= 0)
            {
                total += (int)n;
                continue;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EpollNative.EIntr)
            {
                continue;
            }

            if (errno == EpollNative.EAgain)
            {
                break;
            }

            throw new IOException($"send failed: errno {errno}", Error(errno));
        }

        return total;
    }

    // Under back-pressure only (the socket's send buffer is full): one task per wait.
    private async ValueTask WriteRestAsync(ReadOnlyMemory<byte> rest, int events, CancellationToken cancellationToken)
    {
        while (!rest.IsEmpty)
        {
            await WaitWritableAsync(events, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                events = _writeEvents;
            }

            rest = rest[Send(rest.Span)..];
        }
    }

    // Completes once EPOLLOUT (or an error) has come after the `eventsSeen`-th write event.
    private Task WaitWritableAsync(int eventsSeen, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_closed)
            {
                return Task.FromException(new ObjectDisposedException(nameof(EpollStream)));
            }

            if (_failed is { } failed)
            {
                return Task.FromException(failed);
            }

            if (_writeEvents != eventsSeen)
            {
                return Task.CompletedTask;
            }

            _writeWaiter = new TaskCompletionSource();
            return _writeWaiter.Task.WaitAsync(cancellationToken);
        }
    }
}
