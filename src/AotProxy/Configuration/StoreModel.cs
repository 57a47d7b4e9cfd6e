using AotProxy.Store;

namespace AotProxy.Configuration;

// [store] validated. Postgres null: the local SQLite ledger only. RetentionMonths 0: keep all.
internal sealed record StoreModel(PostgresAddress? Postgres, int RetentionMonths)
{
    public static StoreModel Off { get; } = new(null, 0);

    public bool Enabled => Postgres is not null;
}
