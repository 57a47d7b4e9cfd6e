using Microsoft.Extensions.Logging;

namespace AotProxy.Tenancy;

// Event ids 1700-1709: runtime tenants and keys (issue 17).
internal static partial class TenancyLog
{
    [LoggerMessage(EventId = 1700, Level = LogLevel.Information, Message = "Tenant store: {Store} ({Tenants} tenants, {Keys} issued keys in use)")]
    public static partial void Opened(ILogger logger, string store, int tenants, int keys);

    // Never key material: Target names a tenant or "tenant/key id".
    [LoggerMessage(EventId = 1701, Level = LogLevel.Information, Message = "Tenant store: {Actor} {Action} {Target}")]
    public static partial void Changed(ILogger logger, string actor, string action, string target);

    [LoggerMessage(EventId = 1702, Level = LogLevel.Warning, Message = "Tenant store: writing the last use of {Keys} keys failed; they are written with the next flush")]
    public static partial void FlushFailed(ILogger logger, Exception exception, int keys);

    [LoggerMessage(EventId = 1704, Level = LogLevel.Error, Message = "Tenant store: store tenant {Tenant} is not served: the config file defines a tenant of the same name (a reload and a create crossed); delete one of them")]
    public static partial void Shadowed(ILogger logger, string tenant);

    [LoggerMessage(EventId = 1703, Level = LogLevel.Error, Message = "Tenant store: {Store} did not answer; {Action} {Target} was not made")]
    public static partial void Unavailable(ILogger logger, Exception exception, string store, string action, string target);

    [LoggerMessage(EventId = 1705, Level = LogLevel.Information, Message = "Tenant store: read {Store} again after a change elsewhere ({Tenants} tenants, {Keys} issued keys in use)")]
    public static partial void Reloaded(ILogger logger, string store, int tenants, int keys);

    [LoggerMessage(EventId = 1706, Level = LogLevel.Warning, Message = "Tenant store: {Store} did not answer while waiting for changes made elsewhere; trying again in {Seconds} s (this replica serves what it read last)")]
    public static partial void WatchFailed(ILogger logger, Exception exception, string store, double seconds);

    [LoggerMessage(EventId = 1707, Level = LogLevel.Error, Message = "Tenant store: {Store} cannot be read at startup; serving the config file's tenants only, /ready answers 503 until it is read (tried every {Seconds} s)")]
    public static partial void NotRead(ILogger logger, Exception exception, string store, double seconds);

    [LoggerMessage(EventId = 1708, Level = LogLevel.Error, Message = "Tenant store: {Conflict}; its tenants and keys are not served and /ready answers 503 until one side is changed")]
    public static partial void Conflicting(ILogger logger, string conflict);

    [LoggerMessage(EventId = 1709, Level = LogLevel.Warning, Message = "Tenant store: {Action} {Target} was made, but {Store} did not answer the read that follows it; this replica serves it from its next read of the store")]
    public static partial void NotReadBack(ILogger logger, Exception exception, string store, string action, string target);
}
