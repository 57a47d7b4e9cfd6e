using Microsoft.Extensions.Logging;

namespace AotProxy.Routing;

internal static partial class RoutingLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Worker {Worker} serves {Models} (discovered from /v1/models)")]
    public static partial void ModelsDiscovered(ILogger logger, string worker, IEnumerable<string> models);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Worker {Worker}: model discovery failed: {Reason}")]
    public static partial void DiscoveryFailed(ILogger logger, string worker, string reason);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "Worker {Worker} {Action}")]
    public static partial void DrainChanged(ILogger logger, string worker, string action);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "Worker {Worker} circuit breaker is now {State}")]
    public static partial void BreakerChanged(ILogger logger, string worker, BreakerState state);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Worker {Worker} is now {State} (active health check: {Detail})")]
    public static partial void HealthChanged(ILogger logger, string worker, HealthState state, string detail);

    [LoggerMessage(EventId = 205, Level = LogLevel.Debug, Message = "Worker {Worker}: /metrics scrape failed: {Reason}")]
    public static partial void ScrapeFailed(ILogger logger, string worker, string reason);

    [LoggerMessage(EventId = 206, Level = LogLevel.Information, Message = "Worker {Worker} is warm (its warm-up request answered); it takes traffic")]
    public static partial void WarmedUp(ILogger logger, string worker);

    [LoggerMessage(EventId = 207, Level = LogLevel.Warning, Message = "Worker {Worker}: warm-up request failed ({Reason}); it stays out and is tried again at the next health interval")]
    public static partial void WarmupFailed(ILogger logger, string worker, string reason);
}
