using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

public sealed class SqliteTenantStoreTests : TenantStoreContract, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("aotproxy-store-").FullName;

    private string PathOf => System.IO.Path.Combine(_directory, "usage.db");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    internal override ITenantStore Open() => SqliteTenantStore.Open(PathOf);

    // A file whose tenants table predates issue 20 (no cache_salt, stream_budget_cutoff) or issue
    // 21 (no response_cache): opening it adds the columns it lacks, and its tenants read with the
    // defaults of an entry without the keys.
    [Theory]
    [InlineData("")]
    [InlineData(", cache_salt INTEGER, stream_budget_cutoff INTEGER NOT NULL DEFAULT 0")]
    public void Open_AnOlderTenantsTable_AddsTheColumnsItLacks_AndKeepsItsTenants(string issue20Columns)
    {
        using (var old = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={PathOf}"))
        {
            old.Open();
            using var command = old.CreateCommand();
            command.CommandText = $"""
                CREATE TABLE tenants (name TEXT PRIMARY KEY, class TEXT NOT NULL, weight INTEGER NOT NULL, models TEXT NOT NULL,
                    rpm INTEGER NOT NULL, tpm INTEGER NOT NULL, max_in_flight INTEGER NOT NULL, budget_tokens INTEGER NOT NULL,
                    monthly_budget_tokens INTEGER NOT NULL, budget_usd REAL NOT NULL, monthly_budget_usd REAL NOT NULL,
                    environment TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL{issue20Columns});
                INSERT INTO tenants (name, class, weight, models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens,
                    budget_usd, monthly_budget_usd, environment, created, updated)
                VALUES ('legacy', 'default', 3, '["*"]', 0, 0, 0, 100, 0, 0, 0, 'prod', 1, 2);
                """;
            command.ExecuteNonQuery();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        using (var store = Open())
        {
            var legacy = Assert.Single(store.Load().Tenants);
            Assert.Equal(("legacy", 3, 100L, (bool?)null, false, false), (legacy.Name, legacy.Weight, legacy.BudgetTokens, legacy.CacheSalt, legacy.StreamBudgetCutoff, legacy.ResponseCache));
            Assert.True(store.UpdateTenant(legacy with { CacheSalt = true, StreamBudgetCutoff = true, ResponseCache = true }, Audit("tenant.update", "legacy", 3)));
        }

        using var reopened = Open(); // migrated once: the second open finds the columns
        var migrated = reopened.Load().Tenants[0];
        Assert.Equal(((bool?)true, true, true), (migrated.CacheSalt, migrated.StreamBudgetCutoff, migrated.ResponseCache));
    }

    [Fact]
    public void Open_AFileThatIsNotADatabase_IsATenantStoreExceptionNamingIt()
    {
        File.WriteAllText(PathOf, new string('x', 4096));

        var error = Assert.Throws<TenantStoreException>(() => SqliteTenantStore.Open(PathOf));

        Assert.Contains(PathOf, error.Message, StringComparison.Ordinal);
    }
}
