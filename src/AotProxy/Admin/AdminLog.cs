using Microsoft.Extensions.Logging;

namespace AotProxy.Admin;

// The admin plane's events, ids 400-499 (GatewayLog lists the blocks).
internal static partial class AdminLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Error, Message = "The live console could not build its state; the next tick tries again")]
    public static partial void DashboardStateFailed(ILogger logger, Exception exception);
}
