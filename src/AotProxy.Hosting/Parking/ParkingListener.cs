using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace AotProxy.Hosting.Parking;

// The transport's listener as Kestrel sees it with parking: each accepted connection is served as
// a series of sessions, one Kestrel connection each (ParkableConnection). Between two sessions a
// parked connection is only the transport's objects and its ParkableConnection: no Kestrel state;
// on a transport that parks without itself (IParkableTransport: epoll) only its socket's record.
// Kestrel takes both new connections and resumed ones from AcceptAsync. This listener counts the
// open connections, parked or not, against Kestrel's MaxConcurrentConnections (a parked client
// keeps its place), and its tick (once a second) parks and closes on time: it looks only at the
// heads of two deadline-ordered lists, the sessions idle at a boundary and the parked
// connections, so a tick costs what is due, not what is open.
internal sealed class ParkingListener : IConnectionListener
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromSeconds(1);

    private readonly IConnectionListener _transport;
    private readonly ConnectionParking _parking;
    private readonly long _idleAfterMs;
    private readonly long _keepAliveMs;
    private readonly long? _maxConnections;
    private readonly ILogger _logger;
    private readonly Channel<ParkingSession> _sessions = Channel.CreateUnbounded<ParkingSession>();
    private readonly TaskCompletionSource _parkedClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private readonly DeadlineList _idle = new();
    private readonly DeadlineList _parkedList = new();
    private readonly List<ParkingNode> _due = [];
    private readonly ITimer _ticks;
    private readonly Task _accepting;
    private long _open;
    private long _parked;
    private int _ticking;
    private int _unbindStarted;
    private Task? _unbinding;
    private volatile bool _stopping;

    public ParkingListener(IConnectionListener transport, ConnectionParking parking, TimeSpan keepAlive, long? maxConnections, ILogger logger)
    {
        _transport = transport;
        _parking = parking;
        _idleAfterMs = (long)parking.IdleAfter.TotalMilliseconds;
        _keepAliveMs = (long)keepAlive.TotalMilliseconds;
        _maxConnections = maxConnections;
        _logger = logger;
        _ticks = TimeProvider.System.CreateTimer(static s => ((ParkingListener)s!).Tick(), this, TickInterval, TickInterval);
        _accepting = AcceptLoopAsync();
    }

    public EndPoint EndPoint => _transport.EndPoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            while (await _sessions.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_sessions.Reader.TryRead(out var session))
                {
                    return session;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return null;
    }

    // Stops accepting; parked connections close (they could not be served again), and sessions
    // Kestrel has not taken yet close too. Kestrel closes the ones it serves.
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbindStarted, 1) == 0)
        {
            _unbinding = UnbindOnceAsync(cancellationToken);
        }

        return new ValueTask(Volatile.Read(ref _unbinding) ?? Task.CompletedTask);
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
    }

    private async Task UnbindOnceAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        await _ticks.DisposeAsync().ConfigureAwait(false);
        await _transport.UnbindAsync(cancellationToken).ConfigureAwait(false);
        await _accepting.ConfigureAwait(false);
        _sessions.Writer.TryComplete();
        while (_sessions.Reader.TryRead(out var session))
        {
            await session.DisposeAsync().ConfigureAwait(false);
        }

        var parked = new List<ParkingNode>();
        lock (_gate)
        {
            for (var node = _parkedList.First; node is not null; node = node.Next)
            {
                parked.Add(node);
            }
        }

        foreach (var node in parked)
        {
            node.CloseParked();
        }

        if (Interlocked.Read(ref _parked) == 0)
        {
            _parkedClosed.TrySetResult();
        }

        try
        {
            await _parkedClosed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Kestrel's grace is over: the closes go on without it.
        }
    }

    // A session waits at a request boundary (again): it parks once it has waited idleAfter.
    internal void EnterIdle(ParkableConnection connection)
    {
        lock (_gate)
        {
            _idle.AddLast(connection);
        }
    }

    // Bytes came before the park.
    internal void LeaveIdle(ParkableConnection connection)
    {
        lock (_gate)
        {
            _idle.Remove(connection);
        }
    }

    internal void OnParked(ParkableConnection connection)
    {
        lock (_gate)
        {
            _parkedList.AddLast(connection);
        }

        Interlocked.Increment(ref _parked);
        _parking.OnParked();
    }

    // A parked connection is served again.
    internal void Unparked(ParkingNode node)
    {
        lock (_gate)
        {
            _parkedList.Remove(node);
        }

        OnUnparked();
    }

    // A connection closed (parked or not): its place under max_connections is free.
    internal void Closed(ParkingNode node, bool parked)
    {
        lock (_gate)
        {
            node.Owner?.Remove(node);
            _open--;
        }

        if (parked)
        {
            OnUnparked();
        }
    }

    // A parked connection's next session; false once the listener stops (the caller closes it).
    internal bool TryResume(ParkableConnection connection) =>
        !_stopping && _sessions.Writer.TryWrite(connection.StartSession());

    // The parked connection's socket leaves its transport connection for the transport's parked
    // record, which takes its place in the parked list. False when the connection was not at rest
    // (it is served on).
    internal async Task<bool> ParkSocketAsync(ParkableConnection connection, IParkableTransport transport)
    {
        if (await transport.ParkAsync(this).ConfigureAwait(false) is not { } parked)
        {
            return false;
        }

        bool listed;
        lock (_gate)
        {
            listed = !_stopping && _parkedList.Replace(connection, parked);
        }

        if (!listed)
        {
            // Due meanwhile (keep-alive timeout) or the listener stops: its CloseParked found it busy.
            parked.CloseParked();
        }

        return true;
    }

    // Bytes reached a parked record (on its transport's thread): `transport` serves its socket again.
    internal void Resume(ParkingNode parked, ConnectionContext transport)
    {
        Unparked(parked);
        var connection = new ParkableConnection(transport, this);
        if (!TryResume(connection))
        {
            _ = CloseUnservedAsync(connection);
        }
    }

    private void OnUnparked()
    {
        _parking.OnUnparked();
        if (Interlocked.Decrement(ref _parked) == 0 && _stopping)
        {
            _parkedClosed.TrySetResult();
        }
    }

    private static async Task CloseUnservedAsync(ParkableConnection connection) =>
        await connection.Session!.DisposeAsync().ConfigureAwait(false);

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (await AcceptOneAsync().ConfigureAwait(false))
            {
            }
        }
        catch (Exception ex)
        {
            _sessions.Writer.TryComplete(ex);
            return;
        }

        _sessions.Writer.TryComplete();
    }

    // One socket from the transport, served or refused; false once the transport stops accepting.
    // A method of its own so that the loop keeps no connection while it waits for the next (an
    // unoptimized build keeps every local of an async method in its state machine, and a parked
    // connection's old transport objects would stay reachable through the last one accepted).
    private async ValueTask<bool> AcceptOneAsync()
    {
        if (await _transport.AcceptAsync().ConfigureAwait(false) is not { } accepted)
        {
            return false;
        }

        var connection = new ParkableConnection(accepted, this);
        if (!TryAdd())
        {
            ParkingLog.ConnectionRejected(_logger, accepted.ConnectionId);
            await accepted.DisposeAsync().ConfigureAwait(false);
        }
        else if (!_sessions.Writer.TryWrite(connection.StartSession()))
        {
            await connection.Session!.DisposeAsync().ConfigureAwait(false);
        }

        return true;
    }

    private bool TryAdd()
    {
        lock (_gate)
        {
            if (_open >= _maxConnections)
            {
                return false;
            }

            _open++;
            return true;
        }
    }

    // Parks the sessions idle for idleAfter and closes the parked connections past the keep-alive
    // timeout (counted from the start of the idle period, as Kestrel does); both lists are in
    // deadline order, so the walk stops at the first node not yet due.
    private void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) == 1)
        {
            return;
        }

        try
        {
            var now = Environment.TickCount64;
            int toPark;
            lock (_gate)
            {
                TakeDue(_idle, now - _idleAfterMs);
                toPark = _due.Count;
                TakeDue(_parkedList, now - _keepAliveMs);
            }

            for (var i = 0; i < _due.Count; i++)
            {
                if (i < toPark)
                {
                    ((ParkableConnection)_due[i]).Park();
                }
                else
                {
                    _due[i].CloseParked();
                }
            }
        }
        finally
        {
            _due.Clear();
            Volatile.Write(ref _ticking, 0);
        }
    }

    // Under the lock: moves the nodes idle since `before` or earlier from the list's head to _due.
    private void TakeDue(DeadlineList list, long before)
    {
        while (list.First is { } node && node.IdleSince <= before)
        {
            list.Remove(node);
            _due.Add(node);
        }
    }
}
