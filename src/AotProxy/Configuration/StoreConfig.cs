using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// [store]: one PostgreSQL for every replica. Without postgres_url the local SQLite file
// (ledger.path) is the whole ledger, as before.
internal sealed record StoreConfig
{
    // postgres://user:password@host:port/database[?sslmode=...]. "": the local file only.
    public string PostgresUrl { get; init; } = string.Empty;

    // Whole months of the shared ledger kept before the current one; older month partitions are
    // dropped. 0: keep every month (the lifetime budgets are seeded from what is kept).
    public int LedgerRetentionMonths { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
