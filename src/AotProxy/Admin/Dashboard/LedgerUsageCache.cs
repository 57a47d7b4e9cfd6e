using AotProxy.Admin.Contracts;
using AotProxy.Ledger;
using Microsoft.Data.Sqlite;

namespace AotProxy.Admin.Dashboard;

// The ledger's last hour and day for the live console, read at most every 10 s: four grouped
// scans, on the thread pool (a scan blocks its thread; the admin plane's epoll thread is the data
// plane's too, AdminReports.UsageAsync), one at a time, the last result kept for every message.
internal sealed class LedgerUsageCache(LedgerWriter ledger, TimeProvider time)
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private DashboardUsage _latest = DashboardUsage.Empty;
    private long _readAt = long.MinValue;
    private int _reading;

    public DashboardUsage Latest => Volatile.Read(ref _latest);

    // Starts a read when the last one is older than 10 s and none runs.
    public void Refresh(CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        if ((_readAt != long.MinValue && time.GetElapsedTime(_readAt, now) < Interval) || Interlocked.Exchange(ref _reading, 1) == 1)
        {
            return;
        }

        _readAt = now;
        _ = Task.Run(() => ReadAsync(cancellationToken), cancellationToken);
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            var now = time.GetUtcNow();
            var hour = now.AddHours(-1);
            var day = now.AddDays(-1);
            var rows = new UsageRow[4][];
            var queries = new[]
            {
                new UsageQuery(UsageGrouping.Tenant, hour, null),
                new UsageQuery(UsageGrouping.Model, hour, null),
                new UsageQuery(UsageGrouping.Tenant, day, null),
                new UsageQuery(UsageGrouping.Model, day, null),
            };
            if (ledger.Shipper is { } shipper)
            {
                for (var i = 0; i < queries.Length; i++)
                {
                    rows[i] = await shipper.Shared.RunAsync(queries[i], cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                using var connection = LedgerDatabase.Open(ledger.Path, create: false);
                for (var i = 0; i < queries.Length; i++)
                {
                    rows[i] = queries[i].Run(connection, cancellationToken);
                }
            }

            Volatile.Write(ref _latest, new DashboardUsage(now, null, rows[0], rows[1], rows[2], rows[3]));
        }
        catch (Exception ex) when (ex is SqliteException || LedgerShipper.IsStoreFailure(ex))
        {
            Volatile.Write(ref _latest, Latest with { Error = ex.GetBaseException().Message });
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }
}
