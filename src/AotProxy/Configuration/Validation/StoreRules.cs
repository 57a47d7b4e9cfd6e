using AotProxy.Store;

namespace AotProxy.Configuration.Validation;

// [store]: the shared Postgres and the shared ledger's retention.
internal static class StoreRules
{
    // 100 years: past any audit rule; a larger number is a typo.
    private const int MaxRetentionMonths = 1200;

    public static StoreModel Validate(ValidationContext context, StoreConfig store, LedgerModel ledger)
    {
        context.Unknown("store", store.Unknown);
        PostgresAddress? postgres = null;
        if (store.PostgresUrl.Length > 0)
        {
            if (PostgresAddress.TryParse(store.PostgresUrl, out var address, out var error))
            {
                postgres = address;
            }
            else
            {
                context.Error("store.postgres_url", error);
            }

            if (!ledger.Enabled)
            {
                context.Error("store.postgres_url", "needs a ledger.path: the local file keeps the rows while Postgres is down, until they are shipped");
            }
        }

        if (store.LedgerRetentionMonths is < 0 or > MaxRetentionMonths)
        {
            context.Error("store.ledger_retention_months", $"must be 0 (keep all) to {MaxRetentionMonths} (got {store.LedgerRetentionMonths})");
        }

        return new StoreModel(postgres, Math.Clamp(store.LedgerRetentionMonths, 0, MaxRetentionMonths));
    }
}
