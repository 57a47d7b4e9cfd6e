using Microsoft.Extensions.Logging;

namespace AotProxy.Hosting.Parking;

// The parking listener refuses a connection past server.max_connections itself (parked ones
// count), with Kestrel's own event for it: same category, id and text, so that the operator's
// log (and its throttle, Cli/Logging) reads as before.
internal static partial class ParkingLog
{
    public const string Category = "Microsoft.AspNetCore.Server.Kestrel.Connections";

    [LoggerMessage(24, LogLevel.Warning, @"Connection id ""{ConnectionId}"" rejected because the maximum number of concurrent connections has been reached.", EventName = "ConnectionRejected")]
    public static partial void ConnectionRejected(ILogger logger, string connectionId);
}
