namespace AotProxy.Ledger;

// `--by` / `?by=`: what one row of a usage report sums over.
internal enum UsageGrouping
{
    Tenant,
    Model,
    Day, // UTC calendar day, yyyy-MM-dd
    RequestedModel, // the name the client sent: an alias, "auto", or the model
}
