using AotProxy.Ledger;

namespace AotProxy.Admin.Contracts;

// The ledger's last hour and last day, by tenant and by model, as read At (at most every 10 s).
// Error: why the last read failed (the rows are then the read before, or empty).
internal sealed record DashboardUsage(DateTimeOffset? At, string? Error, UsageRow[] HourByTenant, UsageRow[] HourByModel, UsageRow[] DayByTenant, UsageRow[] DayByModel)
{
    public static readonly DashboardUsage Empty = new(null, null, [], [], [], []);
}
