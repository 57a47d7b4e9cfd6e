using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Hosting.Parking;

// One transport connection for its whole life, across the Kestrel connections (sessions) it is
// served by. It knows whether the connection is between requests: a request starts with the first
// bytes Kestrel reads after the last one ended (BytesArrived), and ends when Kestrel disposes its
// context, with its body read to the end (MarkBodyRead) or absent. An unread body is never taken
// for a boundary: Kestrel drains it after the context is disposed, and a pause in that drain must
// not end the connection, so such a connection waits for its next request before it may park.
//
// Every read of the session that has to wait completes through this object (one per connection,
// reused: no box per read). A read at a boundary that stays idle past park_idle_after is answered
// with an empty, completed result: Kestrel ends its whole connection (its HTTP state, its
// KestrelConnection, its entries in the connection manager) and the transport read stays pending
// here as the parked wait, with no buffer. Bytes start a new session; the client's FIN, the
// keep-alive timeout and the listener's shutdown close the transport connection. A transport that
// parks without itself (IParkableTransport: epoll) has no parked wait here: its socket leaves the
// transport connection and this object for the transport's own parked record, and its next bytes
// make both anew.
internal sealed class ParkableConnection : ParkingNode, IValueTaskSource<ReadResult>
{
    private const int Active = 0;
    private const int Idle = 1;     // the session's read waits at a boundary
    private const int Parked = 2;   // the session was told to end; the read is the parked wait
    private const int Closing = 3;  // parked, and to be closed (keep-alive timeout, shutdown)

    private readonly ParkingListener _listener;
    private readonly IParkableTransport? _parksItsSocket; // the transport, when it can park without itself
    private readonly Action _onReadCompleted;
    private ManualResetValueTaskSourceCore<ReadResult> _read;
    private ValueTaskAwaiter<ReadResult> _pending;
    private SessionInput? _reader;
    private ReadResult _parkedResult;
    private Exception? _parkedError;
    private int _state;
    private int _gate;
    private bool _boundary = true; // no request yet, or the last one ended with its body read
    private bool _bodyRead;

    internal ParkableConnection(ConnectionContext transport, ParkingListener listener)
    {
        Transport = transport;
        _listener = listener;
        _parksItsSocket = transport as IParkableTransport;
        _onReadCompleted = OnReadCompleted;
    }

    internal ConnectionContext Transport { get; }

    // The session Kestrel serves now (null while parked).
    internal ParkingSession? Session { get; private set; }

    internal bool AtBoundary => _boundary;

    // The handler read the request body to its end: the connection may park after this request.
    public static void MarkBodyRead(HttpContext context) =>
        context?.Features.Get<ParkableConnection>()?.BodyRead();

    internal static void MarkRequestEnded(IFeatureCollection features)
    {
        if (features.Get<ParkableConnection>() is { } connection)
        {
            var canHaveBody = features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? true;
            connection.RequestEnded(!canHaveBody || connection._bodyRead);
        }
    }

    // A fresh session for Kestrel: at accept, and when bytes reach a parked connection.
    internal ParkingSession StartSession()
    {
        var session = new ParkingSession(Transport, this);
        Session = session;
        return session;
    }

    // Bytes of a new request reached Kestrel: until it ends, this connection is not at a boundary.
    internal void BytesArrived() => _boundary = false;

    // The session's read did not complete at once: it completes through OnReadCompleted.
    internal ValueTask<ReadResult> WaitAsync(ValueTask<ReadResult> read, SessionInput reader, bool atBoundary)
    {
        _read.Reset();
        _reader = reader;
        _pending = read.GetAwaiter();
        if (atBoundary)
        {
            IdleSince = Environment.TickCount64;
            Volatile.Write(ref _state, Idle);
            _listener.EnterIdle(this); // before the read can complete (OnReadCompleted leaves it)
        }

        _pending.UnsafeOnCompleted(_onReadCompleted);
        return new ValueTask<ReadResult>(this, _read.Version);
    }

    // Ends the parked wait for good (keep-alive timeout, shutdown); false when not parked.
    internal override bool CloseParked()
    {
        if (Interlocked.CompareExchange(ref _state, Closing, Parked) != Parked)
        {
            return false;
        }

        // Wakes the pending read (if it has not completed yet, which Proceed then handles).
        Transport.Transport.Input.CancelPendingRead();
        return true;
    }

    // Kestrel disposed the session's context. A parked session leaves the transport open here.
    internal ValueTask SessionEndedAsync(ParkingSession session)
    {
        if (session.Parking)
        {
            Session = null;
            Arrive();
            return ValueTask.CompletedTask;
        }

        Session = null;
        return CloseAsync(parked: false);
    }

    // Reset once taken: the source would otherwise keep the session's continuation (and with it
    // Kestrel's whole connection) alive while the connection is parked.
    ReadResult IValueTaskSource<ReadResult>.GetResult(short token)
    {
        try
        {
            return _read.GetResult(token);
        }
        finally
        {
            _read.Reset();
        }
    }

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _read.OnCompleted(continuation, state, token, flags);

    private void BodyRead() => _bodyRead = true;

    private void RequestEnded(bool bodyDone)
    {
        _boundary = bodyDone;
        _bodyRead = false;
    }

    // The listener's tick: the session has been idle at a boundary for park_idle_after.
    internal void Park()
    {
        Volatile.Write(ref _gate, 2); // the session's end and the parked read's, in either order
        if (Interlocked.CompareExchange(ref _state, Parked, Idle) != Idle)
        {
            return; // bytes came first
        }

        Session!.Parking = true;
        _listener.OnParked(this);

        // An empty completed read: Kestrel takes it as a client that closed between requests and
        // ends its connection gracefully, on a pool thread (not the tick's).
        _reader = null;
        _read.RunContinuationsAsynchronously = true;
        _read.SetResult(new ReadResult(default, isCanceled: false, isCompleted: true));

        // The transport's read ends too when its socket parks without it (ProceedAsync).
        if (_parksItsSocket is not null)
        {
            Transport.Transport.Input.CancelPendingRead();
        }
    }

    private void OnReadCompleted()
    {
        ReadResult result = default;
        Exception? error = null;
        try
        {
            result = _pending.GetResult();
        }
        catch (Exception ex)
        {
            error = ex;
        }

        _pending = default;
        var state = Volatile.Read(ref _state);
        if (state == Idle)
        {
            state = Interlocked.CompareExchange(ref _state, Active, Idle);
            if (state == Idle)
            {
                _listener.LeaveIdle(this);
            }
        }

        if (state >= Parked)
        {
            _parkedResult = result;
            _parkedError = error;
            Arrive();
            return;
        }

        var reader = _reader!;
        _reader = null;
        _read.RunContinuationsAsynchronously = false; // the session goes on on this thread, as on a plain pipe
        if (error is null)
        {
            _read.SetResult(reader.Track(result));
        }
        else
        {
            _read.SetException(error);
        }
    }

    // The parked read completed, or the parked session ended: the second one decides.
    private void Arrive()
    {
        if (Interlocked.Decrement(ref _gate) == 0)
        {
            Session = null;
            _ = ProceedAsync();
        }
    }

    private async Task ProceedAsync()
    {
        var result = _parkedResult;
        var error = _parkedError;
        _parkedResult = default;
        _parkedError = null;
        // Bytes: a new session. Park's own cancel, on a transport that parks without itself: the
        // socket parks alone (ParkingListener.ParkSocketAsync). Else (the client's FIN, an error,
        // CloseParked's cancel) the connection closes.
        var bytes = error is null && !result.Buffer.IsEmpty;
        if (error is null)
        {
            // Leave any bytes unexamined: the new session's first read returns them at once.
            var input = Transport.Transport.Input;
            input.AdvanceTo(result.Buffer.Start, result.Buffer.Start);
            if (bytes && _parksItsSocket is not null && input.TryRead(out var again))
            {
                // Park's cancel may have come after these bytes: it is taken here, not by the next
                // session's first read.
                input.AdvanceTo(again.Buffer.Start, again.Buffer.Start);
            }
        }

        var parksItsSocket = error is null && !bytes && result.IsCanceled ? _parksItsSocket : null;
        if ((bytes || parksItsSocket is not null) && Interlocked.CompareExchange(ref _state, Active, Parked) == Parked)
        {
            if (parksItsSocket is not null && await _listener.ParkSocketAsync(this, parksItsSocket).ConfigureAwait(false))
            {
                return; // this object is garbage now
            }

            _listener.Unparked(this);
            if (!_listener.TryResume(this))
            {
                await CloseAsync(parked: false).ConfigureAwait(false); // the listener stops
            }

            return;
        }

        await CloseAsync(parked: true).ConfigureAwait(false);
    }

    private async ValueTask CloseAsync(bool parked)
    {
        try
        {
            await Transport.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _listener.Closed(this, parked);
        }
    }
}
