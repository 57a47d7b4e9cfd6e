using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace AotProxy.Hosting.Parking;

// Parks idle HTTP/1 keep-alive connections outside Kestrel's HTTP state (server.park_idle_after).
// Kestrel keeps ~8 KB of objects per HTTP/1 connection for its whole life (perf/RESULTS.md, issue
// 22). This connection middleware hands Kestrel's HTTP layer a ParkingSession; when the session
// has been idle at a request boundary for `idleAfter`, its input reports a clean end (as a client
// FIN between requests would), Kestrel ends the HTTP connection and its objects become garbage,
// while the socket stays open here. The next byte starts a fresh session.
public sealed class ConnectionParking
{
    private readonly TimeSpan _idleAfter;
    private long _parked;
    private long _parks;

    public ConnectionParking(TimeSpan idleAfter)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idleAfter, TimeSpan.Zero);
        _idleAfter = idleAfter;
    }

    // Connections parked now, and parks since start (a connection parks once per idle period).
    public long Parked => Volatile.Read(ref _parked);

    public long Parks => Volatile.Read(ref _parks);

    // Installs the middleware in front of Kestrel's HTTP layer on one HTTP/1 endpoint.
    public void Attach(ListenOptions listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var limits = listen.KestrelServerOptions.Limits;
        listen.Use(next => connection => RunAsync(next, connection, limits));
    }

    private async Task RunAsync(ConnectionDelegate next, ConnectionContext transport, KestrelServerLimits limits)
    {
        // Kestrel's socket connections have both; without them (another transport) nothing can
        // time a park, so the connection is served as it was.
        if (transport.Features.Get<IConnectionHeartbeatFeature>() is not { } heartbeat
            || transport.Features.Get<IConnectionLifetimeNotificationFeature>() is not { } lifetime)
        {
            await next(transport).ConfigureAwait(false);
            return;
        }

        // Read per connection: the keep-alive limit is set after the endpoint is declared.
        var connection = new ParkableConnection(transport, _idleAfter, limits.KeepAliveTimeout);
        transport.Features.Set(connection);
        heartbeat.OnHeartbeat(static state => ((ParkableConnection)state).Tick(), connection);
        while (true)
        {
            if (!await ServeAsync(next, transport, connection).ConfigureAwait(false))
            {
                return; // Kestrel ended for its own reasons (Connection: close, 400, timeout, shutdown): close
            }

            Interlocked.Increment(ref _parked);
            Interlocked.Increment(ref _parks);
            bool resumed;
            try
            {
                resumed = await connection.WaitWhileParkedAsync(lifetime.ConnectionClosedRequested).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _parked);
            }

            if (!resumed)
            {
                return; // the client left, the keep-alive timeout passed, or the server stops
            }
        }
    }

    // One session, in a method of its own: a session left in the parked loop's state machine would
    // keep Kestrel's whole HTTP connection alive through the heartbeat and features it holds.
    // True when the session ended by parking.
    private static async Task<bool> ServeAsync(ConnectionDelegate next, ConnectionContext transport, ParkableConnection connection)
    {
        var session = new ParkingSession(transport, connection);
        connection.Session = session;
        await next(session).ConfigureAwait(false);
        connection.Session = null;
        return session.Parking;
    }
}
