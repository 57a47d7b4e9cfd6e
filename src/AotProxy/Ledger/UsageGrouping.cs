namespace AotProxy.Ledger;

// `--by` / `?by=`: what one row of a usage report sums over.
internal enum UsageGrouping
{
    Tenant,
    Model,
    Day, // UTC calendar day, yyyy-MM-dd
}
