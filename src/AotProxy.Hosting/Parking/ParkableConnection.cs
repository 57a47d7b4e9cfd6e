using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Hosting.Parking;

// One transport connection's parking state, for its whole life (a connection feature). It knows
// whether the connection is between requests: a request starts with the first bytes Kestrel reads
// after the last one ended (BytesArrived), and ends when Kestrel disposes its context, with its
// body read to the end (MarkBodyRead) or absent. An
// unread body is never taken for a boundary: Kestrel drains it after the context is disposed, and
// a pause in that drain must not end the connection, so such a connection waits for its next
// request before it may park.
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "A CancellationTokenSource without a timer holds nothing to dispose; the heartbeat may still cancel a dropped one.")]
internal sealed class ParkableConnection
{
    private const int Active = 0;
    private const int Idle = 1;     // Kestrel waits for a request at a boundary
    private const int Parked = 2;
    private const int Closing = 3;

    private readonly ConnectionContext _transport;
    private readonly long _idleAfterMs;
    private readonly long _keepAliveMs;
    private CancellationTokenSource? _wait;
    private int _state;
    private long _idleSince;
    private bool _boundary = true; // no request yet, or the last one ended with its body read
    private bool _bodyRead;

    internal ParkableConnection(ConnectionContext transport, TimeSpan idleAfter, TimeSpan keepAlive)
    {
        _transport = transport;
        _idleAfterMs = (long)idleAfter.TotalMilliseconds;
        _keepAliveMs = (long)keepAlive.TotalMilliseconds;
    }

    internal PipeReader Input => _transport.Transport.Input;

    // The session Kestrel's HTTP layer runs on now (null while parked).
    internal ParkingSession? Session { get; set; }

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

    private void BodyRead() => _bodyRead = true;

    private void RequestEnded(bool bodyDone)
    {
        _boundary = bodyDone;
        _bodyRead = false;
    }

    // Bytes of a new request reached Kestrel: until it ends, this connection is not at a boundary.
    internal void BytesArrived() => _boundary = false;

    internal bool AtBoundary => _boundary;

    // A token that the heartbeat cancels once the read at the boundary has waited idle_after.
    internal CancellationToken BeginIdle()
    {
        // Never disposed: the heartbeat may still cancel an old one (it has no timer to free).
        if (_wait is null || !_wait.TryReset())
        {
            _wait = new CancellationTokenSource();
        }

        Volatile.Write(ref _idleSince, Environment.TickCount64);
        Volatile.Write(ref _state, Idle);
        return _wait.Token;
    }

    // False when the heartbeat asked this wait to park (its token is then cancelled).
    internal bool EndIdle() => Interlocked.Exchange(ref _state, Active) == Idle;

    // Parked: waits for the next byte with no buffer (Kestrel's socket transport waits for data
    // before it takes a block) and no HTTP state. True when bytes came; false when the connection
    // is to close: the client closed it, the keep-alive timeout passed, or the server stops.
    internal async Task<bool> WaitWhileParkedAsync(CancellationToken serverClosing)
    {
        if (_wait is null || !_wait.TryReset())
        {
            _wait = new CancellationTokenSource();
        }

        var token = _wait.Token;
        Volatile.Write(ref _state, Parked);
        using var stop = serverClosing.UnsafeRegister(static state => ((ParkableConnection)state!).Close(), this);
        try
        {
            var result = await Input.ReadAsync(token).ConfigureAwait(false);
            if (result.Buffer.IsEmpty)
            {
                Input.AdvanceTo(result.Buffer.Start);
                return false;
            }

            // Leave the bytes unexamined: the next session's first read returns them at once.
            Input.AdvanceTo(result.Buffer.Start, result.Buffer.Start);
            return true;
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionAbortedException or IOException)
        {
            return false;
        }
        finally
        {
            Volatile.Write(ref _state, Active);
        }
    }

    // Kestrel's heartbeat, about once a second: parks an idle session, closes a parked connection
    // at the keep-alive timeout (counted from the start of the idle period, as Kestrel does).
    internal void Tick()
    {
        Session?.Tick();
        var state = Volatile.Read(ref _state);
        var idle = Environment.TickCount64 - Volatile.Read(ref _idleSince);
        if ((state == Idle && idle >= _idleAfterMs) || (state == Parked && idle >= _keepAliveMs))
        {
            if (Interlocked.CompareExchange(ref _state, Closing, state) == state)
            {
                _wait?.Cancel();
            }
        }
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _state, Closing) == Parked)
        {
            _wait?.Cancel();
        }
    }
}
