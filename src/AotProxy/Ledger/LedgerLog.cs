using AotProxy.Store;
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

    [LoggerMessage(EventId = 805, Level = LogLevel.Information, Message = "Shared ledger: {Store} (this file's ledger_id {LedgerId}; its rows up to {Shipped} shipped before)")]
    public static partial void SharedOpened(ILogger logger, PostgresAddress store, Guid ledgerId, long shipped);

    [LoggerMessage(EventId = 806, Level = LogLevel.Warning, Message = "Shared ledger {Store} did not answer at startup ({Reason}): budgets and monthly counters are seeded from this replica's own file; its rows are spooled there and shipped when it answers")]
    public static partial void SharedUnreachableAtStart(ILogger logger, PostgresAddress store, string reason);

    [LoggerMessage(EventId = 807, Level = LogLevel.Warning, Message = "Shared ledger {Store} does not answer ({Reason}): rows are spooled to the local file and replayed when it returns")]
    public static partial void StoreDown(ILogger logger, PostgresAddress store, string reason);

    [LoggerMessage(EventId = 808, Level = LogLevel.Information, Message = "Shared ledger {Store} answers again: {Rows} spooled rows replayed")]
    public static partial void StoreBack(ILogger logger, PostgresAddress store, long rows);

    [LoggerMessage(EventId = 809, Level = LogLevel.Information, Message = "Shared ledger: {Partitions} month partitions older than {Months} months dropped (store.ledger_retention_months)")]
    public static partial void PartitionsDropped(ILogger logger, int partitions, int months);

    [LoggerMessage(EventId = 810, Level = LogLevel.Error, Message = "Shared ledger: reading the local file's rows to ship failed; tried again next interval")]
    public static partial void SpoolReadFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 803, Level = LogLevel.Information, Message = "Usage ledger closed: {Written} rows written, {Dropped} dropped")]
    public static partial void Closed(ILogger logger, long written, long dropped);
}
