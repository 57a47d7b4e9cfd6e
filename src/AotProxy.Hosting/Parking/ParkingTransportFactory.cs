using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace AotProxy.Hosting.Parking;

// The transport (sockets or epoll) with parking in front of it (ParkingListener). Kestrel's
// limits are read when it binds: the listener's Configure sets them after the endpoint is declared.
internal sealed class ParkingTransportFactory(IConnectionListenerFactory transport, ConnectionParking parking, KestrelServerLimits limits, ILoggerFactory loggerFactory) : IConnectionListenerFactory
{
    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = await transport.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        return new ParkingListener(listener, parking, limits.KeepAliveTimeout, limits.MaxConcurrentConnections, loggerFactory.CreateLogger(ParkingLog.Category));
    }
}
