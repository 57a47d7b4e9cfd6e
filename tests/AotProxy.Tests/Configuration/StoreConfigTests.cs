using AotProxy.Store;
using Npgsql;

namespace AotProxy.Tests.Configuration;

public sealed class StoreConfigTests
{
    [Fact]
    public void Store_Absent_IsOff()
    {
        var store = TestConfig.Valid("").Store;

        Assert.False(store.Enabled);
        Assert.Equal(0, store.RetentionMonths);
    }

    [Fact]
    public void Store_Keys_AreRead()
    {
        var store = TestConfig.Valid("""
            [store]
            postgres_url = "postgres://gw:s3cret@db.internal:6543/aotproxy?sslmode=require"
            ledger_retention_months = 13
            """).Store;

        Assert.Equal(new PostgresAddress("db.internal", 6543, "gw", "s3cret", "aotproxy", SslMode.Require), store.Postgres);
        Assert.Equal(13, store.RetentionMonths);
    }

    [Theory]
    [InlineData("postgres://127.0.0.1/ledger", "127.0.0.1", 5432, null, null, "ledger")]
    [InlineData("postgresql://app:pw%40x@[::1]:5433/a%20b", "::1", 5433, "app", "pw@x", "a b")]
    public void PostgresUrl_Forms_AreParsed(string url, string host, int port, string? user, string? password, string database)
    {
        Assert.True(PostgresAddress.TryParse(url, out var address, out var error), error);

        Assert.Equal(new PostgresAddress(host, port, user, password, database, SslMode.Prefer), address);
    }

    [Fact]
    public void PostgresAddress_Text_NeverShowsThePassword()
    {
        Assert.True(PostgresAddress.TryParse("postgres://app:hunter2@db:5432/ledger", out var address, out _));

        Assert.Equal("postgres://app@db:5432/ledger", address.ToString());
        Assert.Equal("hunter2", new NpgsqlConnectionStringBuilder(address.ConnectionString()).Password);
    }

    [Theory]
    [InlineData("postgres_url = \"db:5432/ledger\"", "store.postgres_url")]
    [InlineData("postgres_url = \"redis://db:5432/ledger\"", "store.postgres_url")]
    [InlineData("postgres_url = \"postgres://db:5432\"", "store.postgres_url")]
    [InlineData("postgres_url = \"postgres://db/ledger?sslmode=sometimes\"", "store.postgres_url")]
    [InlineData("postgres_url = \"postgres://db/ledger?connect_timeout=1\"", "store.postgres_url")]
    [InlineData("ledger_retention_months = -1", "store.ledger_retention_months")]
    [InlineData("ledger_retention_months = 1201", "store.ledger_retention_months")]
    [InlineData("ledger_retention = \"400d\"", "store.ledger_retention")]
    public void Store_InvalidValue_IsRejectedWithItsKeyAndLine(string line, string key)
    {
        var error = TestConfig.SingleError("# shared ledger\n[store]\n" + line + "\n");

        Assert.Equal(key, error.Key);
        Assert.Equal(3, error.Line);
    }

    [Fact]
    public void PostgresUrl_WithoutALedgerFile_IsRejected_ItIsTheSpool()
    {
        var error = TestConfig.SingleError("[ledger]\npath = \"\"\n\n[store]\npostgres_url = \"postgres://db/ledger\"\n");

        Assert.Equal("store.postgres_url", error.Key);
        Assert.Contains("ledger.path", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PostgresUrl_Rejected_IsQuotedWithoutItsPassword()
    {
        var error = TestConfig.SingleError("[store]\npostgres_url = \"http://u:hunter2@db:5432/x\"\n");

        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        Assert.Contains("***@db:5432", error.Message, StringComparison.Ordinal);
    }
}
