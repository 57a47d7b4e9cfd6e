using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace AotProxy.Hosting.Parking;

// The transport's listener as Kestrel sees it with parking: each accepted connection is served as
// a series of sessions, one Kestrel connection each (ParkableConnection). Between two sessions a
// parked connection is only the transport's objects and its ParkableConnection: no Kestrel state.
// Kestrel takes both new connections and resumed ones from AcceptAsync. This listener counts the
// open connections, parked or not, against Kestrel's MaxConcurrentConnections (a parked client
// keeps its place), and its tick (once a second) parks and closes on time.
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
    private readonly List<ParkableConnection> _due = [];
    private readonly ITimer _ticks;
    private readonly Task _accepting;
    private ParkableConnection? _first;
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

        foreach (var connection in Snapshot(static c => c.IsParked))
        {
            connection.CloseParked();
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

    internal void OnParked()
    {
        Interlocked.Increment(ref _parked);
        _parking.OnParked();
    }

    internal void OnUnparked()
    {
        _parking.OnUnparked();
        if (Interlocked.Decrement(ref _parked) == 0 && _stopping)
        {
            _parkedClosed.TrySetResult();
        }
    }

    // A parked connection's next session; false once the listener stops (the caller closes it).
    internal bool TryResume(ParkableConnection connection) =>
        !_stopping && _sessions.Writer.TryWrite(connection.StartSession());

    internal void Remove(ParkableConnection connection)
    {
        lock (_gate)
        {
            if (connection.Previous is { } previous)
            {
                previous.Next = connection.Next;
            }
            else if (_first == connection)
            {
                _first = connection.Next;
            }
            else
            {
                return; // removed already
            }

            if (connection.Next is { } next)
            {
                next.Previous = connection.Previous;
            }

            connection.Previous = connection.Next = null;
            _open--;
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (await _transport.AcceptAsync().ConfigureAwait(false) is { } accepted)
            {
                var connection = new ParkableConnection(accepted, this);
                if (!TryAdd(connection))
                {
                    ParkingLog.ConnectionRejected(_logger, accepted.ConnectionId);
                    await accepted.DisposeAsync().ConfigureAwait(false);
                    continue;
                }

                if (!_sessions.Writer.TryWrite(connection.StartSession()))
                {
                    await connection.Session!.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex)
        {
            _sessions.Writer.TryComplete(ex);
            return;
        }

        _sessions.Writer.TryComplete();
    }

    private bool TryAdd(ParkableConnection connection)
    {
        lock (_gate)
        {
            if (_open >= _maxConnections)
            {
                return false;
            }

            _open++;
            connection.Next = _first;
            if (_first is not null)
            {
                _first.Previous = connection;
            }

            _first = connection;
            return true;
        }
    }

    private void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) == 1)
        {
            return;
        }

        try
        {
            var now = Environment.TickCount64;
            foreach (var connection in Snapshot(c => c.Tick(now, _idleAfterMs, _keepAliveMs)))
            {
                connection.CloseParked();
            }
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    // The open connections `select` picks, under the lock; what they do next runs outside it.
    private List<ParkableConnection> Snapshot(Func<ParkableConnection, bool> select)
    {
        _due.Clear();
        lock (_gate)
        {
            for (var c = _first; c is not null; c = c.Next)
            {
                if (select(c))
                {
                    _due.Add(c);
                }
            }
        }

        return _due;
    }
}
