using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace AotProxy.Hosting.Parking;

// Parks idle HTTP/1 keep-alive connections outside Kestrel (server.park_idle_after). Kestrel keeps
// ~8 KB of objects per HTTP/1 connection for its whole life, and ~1.5 KB more per connection of
// any kind (perf/RESULTS.md, issue 22). With parking, Kestrel serves each transport connection as
// a series of sessions (ParkingListener): when a session has been idle at a request boundary for
// `idleAfter`, its input reports a clean end (as a client FIN between requests would), Kestrel ends
// its whole connection and its objects become garbage, while the socket stays open here with no
// buffer. The next byte starts a fresh session: Kestrel accepts it as a new connection.
public sealed class ConnectionParking
{
    private long _parked;
    private long _parks;

    public ConnectionParking(TimeSpan idleAfter)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idleAfter, TimeSpan.Zero);
        IdleAfter = idleAfter;
    }

    public TimeSpan IdleAfter { get; }

    // Connections parked now, and parks since start (a connection parks once per idle period).
    public long Parked => Volatile.Read(ref _parked);

    public long Parks => Volatile.Read(ref _parks);

    // The transport of one HTTP/1 endpoint, with parking in front.
    internal IConnectionListenerFactory Wrap(IConnectionListenerFactory transport, KestrelServerLimits limits, ILoggerFactory loggerFactory) =>
        new ParkingTransportFactory(transport, this, limits, loggerFactory);

    internal void OnParked()
    {
        Interlocked.Increment(ref _parked);
        Interlocked.Increment(ref _parks);
    }

    internal void OnUnparked() => Interlocked.Decrement(ref _parked);
}
