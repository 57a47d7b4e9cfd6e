using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AotProxy.Hosting.Parking;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Hosting.Epoll;

// One accepted TCP connection on an epoll loop. Input: recv only after EPOLLIN (edge-triggered),
// into the input pipe until the kernel has no more, then one flush; while a flush waits on the
// reader (back-pressure) reading stops, and readiness seen meanwhile is remembered. Output: send
// straight from the thread that flushed the output pipe, and wait for EPOLLOUT only after EAGAIN.
// A parked keep-alive connection gives its fd away (ParkAsync) and becomes garbage; the socket's
// next bytes make a new EpollConnection on the same fd and loop slot (Resume).
internal sealed class EpollConnection : ConnectionContext,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature,
    IConnectionLifetimeFeature, IConnectionEndPointFeature, IMemoryPoolFeature, IEpollHandler, IParkableTransport
{
    // What recv asks for at least: a whole small request in one call.
    private const int MinReadSize = 4096;

    // Kestrel's defaults for its socket transport: 1 MiB unread input, 64 KiB unsent output.
    private static readonly PipeOptions InputOptions = new(MemoryPool<byte>.Shared, PipeScheduler.Inline, PipeScheduler.Inline, 1024 * 1024, 512 * 1024, useSynchronizationContext: false);
    private static readonly PipeOptions OutputOptions = new(MemoryPool<byte>.Shared, PipeScheduler.Inline, PipeScheduler.Inline, 64 * 1024, 32 * 1024, useSynchronizationContext: false);
    private static long _lastId;

    private readonly EpollLoop _loop;
    private readonly int _fd;
    private readonly long _id;
    private readonly Pipe _input = new(InputOptions);
    private readonly Pipe _output = new(OutputOptions);
    private readonly CancellationTokenSource _closedSource = new();
    private readonly TaskCompletionSource _closeDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closedFired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly Action _onFlushed;
    private Task? _sending;
    private IEpollParkedHandler? _parkTo;
    private TaskCompletionSource<bool>? _parkDone;
    private volatile bool _sendBusy;
    private ValueTaskAwaiter<FlushResult> _flush;
    private ulong _token;
    private bool _registered;

    // Loop thread only.
    private bool _readable;
    private bool _peerClosed;
    private bool _flushPending;
    private bool _readEnded;

    // Under _gate: the fd's state as the sender, Abort and close see it.
    private bool _fdClosed;
    private bool _writeReady;
    private TaskCompletionSource? _writeWaiter;

    private int _aborted;
    private volatile ConnectionAbortedException? _abortReason;
    private IDictionary<object, object?>? _items;

    public EpollConnection(EpollLoop loop, int fd, EndPoint? local, EndPoint? remote)
        : this(loop, fd, Interlocked.Increment(ref _lastId), local, remote)
    {
    }

    private EpollConnection(EpollLoop loop, int fd, long id, EndPoint? local, EndPoint? remote)
    {
        _loop = loop;
        _fd = fd;
        _id = id;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        ConnectionId = "E" + id.ToString("X8", System.Globalization.CultureInfo.InvariantCulture);
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        ConnectionClosed = _closedSource.Token;
        _onFlushed = () => _loop.Post(static s => ((EpollConnection)s).OnFlushed(), this);
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionTransportFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set<IMemoryPoolFeature>(this);
        Features.Set(loop); // a request's upstream connection joins it (EpollClientLoops), from any thread
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public MemoryPool<byte> MemoryPool => MemoryPool<byte>.Shared;

    // Starts the send loop and joins the epoll loop (on its thread).
    public void Start()
    {
        _sending = SendLoopAsync();
        _loop.Post(static s => ((EpollConnection)s).Register(), this);
    }

    // Loop thread: a parked socket's events (its next request, or its end) came; a new connection
    // takes its fd, loop slot and connection id over and reads them at once.
    public static EpollConnection Resume(in EpollSocket socket, uint events)
    {
        var connection = new EpollConnection(socket.Loop, socket.Fd, socket.Id, socket.Local, socket.Remote)
        {
            _token = socket.Token,
            _registered = true,
        };
        connection._sending = connection.SendLoopAsync();
        socket.Loop.Replace(socket.Token, connection);
        connection.OnEvents(events);
        return connection;
    }

    // Parking, once the application has ended its use of the connection at a request boundary and
    // its read was canceled: the fd, still registered, goes to a ParkedSocket (same loop slot) and
    // this connection's pipes, send loop and features are released. Null, and the connection is
    // unchanged, when it is not at rest: input arrived (in the pipe or unread in the kernel),
    // output is still being sent, or it is ending.
    public async ValueTask<ParkingNode?> ParkAsync(ParkingListener listener)
    {
        var parked = new ParkedSocket(listener);
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _parkTo = parked;
        _parkDone = done;
        _loop.Post(static s => ((EpollConnection)s).ParkOnLoop(), this);
        if (!await done.Task.ConfigureAwait(false))
        {
            return null;
        }

        // The fd is no longer ours: the send loop ends without shutting it down (_fdClosed).
        await _output.Writer.CompleteAsync().ConfigureAwait(false);
        if (_sending is not null)
        {
            await _sending.ConfigureAwait(false);
        }

        await _input.Reader.CompleteAsync().ConfigureAwait(false);
        await _input.Writer.CompleteAsync().ConfigureAwait(false);
        _closedSource.Dispose();
        return parked;
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        _abortReason = abortReason;
        _output.Reader.CancelPendingRead();
        ShutdownSocket();
        WakeSender();
        _loop.Post(static s => ((EpollConnection)s).EndRead(null), this);
    }

    public override async ValueTask DisposeAsync()
    {
        await _input.Reader.CompleteAsync().ConfigureAwait(false);
        await _output.Writer.CompleteAsync().ConfigureAwait(false);
        if (_sending is not null)
        {
            await _sending.ConfigureAwait(false);
        }

        _loop.Post(static s => ((EpollConnection)s).CloseOnLoop(), this);
        await _closeDone.Task.ConfigureAwait(false);
        await _closedFired.Task.ConfigureAwait(false);
        _closedSource.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    // Loop thread.
    public void OnEvents(uint events)
    {
        if ((events & (EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
        {
            _peerClosed = true;
        }

        if ((events & (EpollNative.EpollIn | EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
        {
            _readable = true;
            if (!_flushPending)
            {
                Receive();
            }
        }

        if ((events & (EpollNative.EpollOut | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
        {
            WakeSender();
        }
    }

    private void Register()
    {
        if (_readEnded)
        {
            return; // closed before it joined the loop
        }

        try
        {
            _token = _loop.Register(_fd, this, EpollNative.EpollIn | EpollNative.EpollOut | EpollNative.EpollRdHup | EpollNative.EpollEt);
        }
        catch (IOException ex)
        {
            EndRead(ex);
            return;
        }

        _registered = true;
    }

    // Loop thread: parks if nothing is in flight either way (ParkAsync).
    private void ParkOnLoop()
    {
        var parked = _parkTo!;
        var done = _parkDone!;
        _parkTo = null;
        _parkDone = null;
        var atRest = _registered && !_readEnded && !_readable && !_flushPending && !HasUnreadInput();
        if (atRest)
        {
            lock (_gate)
            {
                atRest = !_sendBusy && _writeWaiter is null && _aborted == 0 && !_fdClosed;
                _fdClosed = atRest; // from here on no shutdown and no close of this fd by this connection
            }
        }

        if (atRest)
        {
            _readEnded = true;
            _registered = false;
            parked.Adopt(new EpollSocket(_loop, _fd, _token, _id, LocalEndPoint, RemoteEndPoint));
            _loop.Replace(_token, parked);
        }

        done.TrySetResult(atRest);
    }

    // Loop thread, while parking: the application's read has ended (canceled), so the pipe may be
    // looked at here; what is in it stays for the next read.
    private bool HasUnreadInput()
    {
        if (!_input.Reader.TryRead(out var result))
        {
            return false;
        }

        _input.Reader.AdvanceTo(result.Buffer.Start);
        return !result.Buffer.IsEmpty || result.IsCompleted;
    }

    // Loop thread: recv until the kernel has no more, then flush once. A short read means the
    // socket's queue is empty (TCP gives what it holds up to the length asked), so the EAGAIN
    // call that would confirm it is skipped, as nginx does with EPOLLRDHUP; after the peer's FIN
    // the reads go on to the 0 that reports it.
    private unsafe void Receive()
    {
        var writer = _input.Writer;
        var received = 0L;
        while (_readable && !_readEnded)
        {
            var memory = writer.GetMemory(MinReadSize);
            nint n;
            fixed (byte* p = memory.Span)
            {
                n = EpollNative.Recv(_fd, p, memory.Length, 0);
            }

            if (n > 0)
            {
                writer.Advance((int)n);
                received += n;
                if (n < memory.Length && !_peerClosed)
                {
                    _readable = false;
                }

                // Past the pause threshold, the reader decides: flush and stop if it is behind.
                if (received >= InputOptions.PauseWriterThreshold)
                {
                    received = 0;
                    if (!Flush())
                    {
                        return;
                    }
                }

                continue;
            }

            if (n == 0)
            {
                EndRead(null);
                return;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EpollNative.EIntr)
            {
                continue;
            }

            if (errno == EpollNative.EAgain)
            {
                _readable = false;
                break;
            }

            EndRead(errno == EpollNative.EConnReset
                ? new ConnectionResetException("the client reset the connection")
                : new IOException($"recv failed: errno {errno}"));
            return;
        }

        if (received > 0 && !_readEnded)
        {
            Flush();
        }
    }

    // Loop thread. False: the reader is behind (or gone); reading waits for OnFlushed.
    [SuppressMessage("Reliability", "CA2012:Use ValueTasks correctly", Justification = "The flush is consumed once: its result when complete, else one OnCompleted callback that reads it (OnFlushed); awaiting would need an async method per flush on the loop.")]
    private bool Flush()
    {
        var flush = _input.Writer.FlushAsync();
        if (flush.IsCompleted)
        {
            if (flush.Result.IsCompleted)
            {
                EndRead(null); // the application no longer reads
                return false;
            }

            return true;
        }

        _flushPending = true;
        _flush = flush.GetAwaiter();
        _flush.UnsafeOnCompleted(_onFlushed);
        return false;
    }

    // Loop thread: the reader caught up; the socket may have become readable meanwhile.
    private void OnFlushed()
    {
        _flushPending = false;
        bool readerGone;
        try
        {
            readerGone = _flush.GetResult().IsCompleted;
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
            readerGone = true;
        }

        if (_readEnded)
        {
            return;
        }

        if (readerGone)
        {
            EndRead(null);
        }
        else if (_readable)
        {
            Receive();
        }
    }

    // Loop thread: no more input (FIN, reset, abort, close). ConnectionClosed fires, as the
    // socket transport fires it when its receive loop ends: that is what aborts a request whose
    // client went away.
    private void EndRead(Exception? error)
    {
        if (_readEnded)
        {
            return;
        }

        _readEnded = true;
        _input.Writer.Complete(_abortReason ?? error);
        ThreadPool.UnsafeQueueUserWorkItem(static s =>
        {
            var connection = (EpollConnection)s!;
            try
            {
                connection._closedSource.Cancel();
            }
            finally
            {
                connection._closedFired.TrySetResult();
            }
        }, this);
    }

    // Loop thread, after the send loop has ended.
    private void CloseOnLoop()
    {
        EndRead(null);
        lock (_gate)
        {
            if (_fdClosed)
            {
                return; // a second DisposeAsync: the fd number may already be another socket's
            }

            _fdClosed = true;
            EpollNative.Close(_fd);
        }

        if (_registered)
        {
            _loop.Unregister(-1, _token);
        }

        _closeDone.TrySetResult();
    }

    private async Task SendLoopAsync()
    {
        var reader = _output.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break; // Abort
                }

                var buffer = result.Buffer;
                _sendBusy = !buffer.IsEmpty; // a park waits until it has been sent
                while (!buffer.IsEmpty)
                {
                    var sent = Send(buffer);
                    if (sent < 0)
                    {
                        await WaitWritableAsync().ConfigureAwait(false);
                        continue;
                    }

                    buffer = buffer.Slice(sent);
                }

                reader.AdvanceTo(buffer.End);
                _sendBusy = false;
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }
        finally
        {
            // As the socket transport: once output ends the socket is shut both ways, which ends
            // the read side too (the loop sees EPOLLHUP), and the reader is released.
            await reader.CompleteAsync(error).ConfigureAwait(false);
            ShutdownSocket();
            _input.Writer.CancelPendingFlush();
        }
    }

    // Sends what it can of the first segments; -1: the socket's buffer is full (EAGAIN).
    private unsafe long Send(in ReadOnlySequence<byte> buffer)
    {
        long total = 0;
        foreach (var segment in buffer)
        {
            var span = segment.Span;
            while (!span.IsEmpty)
            {
                nint n;
                fixed (byte* p = span)
                {
                    n = EpollNative.Send(_fd, p, span.Length, EpollNative.MsgNoSignal);
                }

                if (n >= 0)
                {
                    total += n;
                    span = span[(int)n..];
                    continue;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == EpollNative.EIntr)
                {
                    continue;
                }

                if (errno == EpollNative.EAgain)
                {
                    return total > 0 ? total : -1;
                }

                if (_abortReason is { } reason)
                {
                    throw reason;
                }

                throw errno is EpollNative.EPipe or EpollNative.EConnReset
                    ? new ConnectionResetException("the client reset the connection")
                    : new IOException($"send failed: errno {errno}");
            }
        }

        return total;
    }

    // After EAGAIN: EPOLLOUT seen since the last wait means try again at once.
    private Task WaitWritableAsync()
    {
        lock (_gate)
        {
            if (_writeReady || _fdClosed || _aborted != 0)
            {
                _writeReady = false;
                return Task.CompletedTask;
            }

            _writeWaiter = new TaskCompletionSource();
            return _writeWaiter.Task;
        }
    }

    private void WakeSender()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            waiter = _writeWaiter;
            _writeWaiter = null;
            _writeReady = waiter is null;
        }

        waiter?.TrySetResult();
    }

    private void ShutdownSocket()
    {
        lock (_gate)
        {
            if (!_fdClosed)
            {
                EpollNative.Shutdown(_fd, EpollNative.ShutRdWr);
            }
        }
    }
}
