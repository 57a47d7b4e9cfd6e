using Microsoft.Extensions.Logging;

namespace AotProxy.Ledger;

internal static partial class LedgerLog
{
    [LoggerMessage(EventId = 800, Level = LogLevel.Information, Message = "Usage ledger: {Path} ({Tenants} tenants with usage on record)")]
    public static partial void Opened(ILogger logger, string path, int tenants);

    [LoggerMessage(EventId = 801, Level = LogLevel.Warning, Message = "Usage ledger queue is full ({Capacity} rows): {Dropped} rows dropped so far; in-memory totals still count them. Is the disk slow or full?")]
    public static partial void Dropping(ILogger logger, int capacity, long dropped);

    [LoggerMessage(EventId = 802, Level = LogLevel.Error, Message = "Usage ledger: writing {Rows} rows to {Path} failed; they are counted as dropped")]
    public static partial void WriteFailed(ILogger logger, Exception exception, int rows, string path);

    [LoggerMessage(EventId = 804, Level = LogLevel.Warning, Message = "Usage ledger: {Requests} requests admitted before the last stop never ended (a crash or kill -9); recorded in {Path} as interrupted, charged their prompt estimates")]
    public static partial void Interrupted(ILogger logger, int requests, string path);

    [LoggerMessage(EventId = 803, Level = LogLevel.Information, Message = "Usage ledger closed: {Written} rows written, {Dropped} dropped")]
    public static partial void Closed(ILogger logger, long written, long dropped);
}
