using AotProxy.Ledger;
using Microsoft.Data.Sqlite;

namespace AotProxy.Tests.Ledger;

public sealed class LedgerDatabaseTests : IDisposable
{
    private readonly LedgerFile _file = new();

    [Fact]
    public void ReadTotals_SplitsLifetimeAndTheCurrentUtcMonth()
    {
        var october = new DateTimeOffset(2026, 10, 31, 23, 59, 59, 999, TimeSpan.Zero);
        var november = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        _file.Insert(
            LedgerFile.Row(tenant: "acme", time: october, prompt: 100, completion: 50, cost: 1_000),
            LedgerFile.Row(tenant: "acme", time: november, prompt: 10, completion: 5, cost: 200),
            LedgerFile.Row(tenant: "beta", time: october, prompt: 1, completion: 1, cost: 3));

        using var connection = _file.Open();
        var totals = LedgerDatabase.ReadTotals(connection, new DateTimeOffset(2026, 11, 15, 8, 0, 0, TimeSpan.FromHours(-5)));

        Assert.Equal(2, totals.Length);
        Assert.Equal(new("acme", 165, 15, 1_200, 200), totals[0]);
        Assert.Equal(new("beta", 2, 0, 3, 0), totals[1]);
    }

    [Fact]
    public void ReadTotals_AtTheLastMillisecondOfOctober_CountsOctober()
    {
        var october = new DateTimeOffset(2026, 10, 31, 23, 59, 59, 999, TimeSpan.Zero);
        _file.Insert(LedgerFile.Row(tenant: "acme", time: october, prompt: 4, completion: 0));

        using var connection = _file.Open();

        Assert.Equal(4, Assert.Single(LedgerDatabase.ReadTotals(connection, october)).MonthTokens);
        Assert.Equal(0, Assert.Single(LedgerDatabase.ReadTotals(connection, october.AddMilliseconds(1))).MonthTokens);
    }

    [Fact]
    public void Open_SetsWalAndNormalSynchronousOnEveryConnection()
    {
        _file.Insert(LedgerFile.Row());

        using var connection = _file.Open();

        Assert.Equal("wal", Scalar(connection, "PRAGMA journal_mode"));
        Assert.Equal(1L, Scalar(connection, "PRAGMA synchronous")); // 1 = NORMAL
        Assert.Equal((long)LedgerDatabase.SchemaVersion, Scalar(connection, "PRAGMA user_version"));
    }

    [Fact]
    public void Open_CreatesTheIndexesOnTimeAndTenantTime()
    {
        _file.Insert(LedgerFile.Row());

        using var connection = _file.Open();

        Assert.Equal(2L, Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('requests_time', 'requests_tenant_time')"));
    }

    [Fact]
    public void Open_WithoutCreate_DoesNotMakeAMissingFile()
    {
        Assert.Throws<SqliteException>(() => LedgerDatabase.Open(_file.Path, create: false));
        Assert.False(File.Exists(_file.Path));
    }

    [Fact]
    public void Insert_StoresEveryField()
    {
        var time = new DateTimeOffset(2026, 11, 2, 3, 4, 5, 678, TimeSpan.Zero);
        _file.Insert(LedgerFile.Row(tenant: "acme", model: "llama", time: time, prompt: 11, completion: 22, cached: 3, status: 499, cost: 42, estimated: true, id: "req-1", requested: "fast"));

        using var connection = _file.Open();
        Assert.Equal("fast", Scalar(connection, "SELECT requested_model FROM requests"));
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, time, tenant, key_id, class, model, worker, prompt_tokens, completion_tokens, cached_tokens, estimated, queue_wait_ms, ttft_ms, duration_ms, status, outcome, cost_nanos FROM requests";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.Equal("req-1", reader.GetString(0));
        Assert.Equal(time.ToUnixTimeMilliseconds(), reader.GetInt64(1));
        Assert.Equal(["acme", "0123abcd", "default", "llama", "gpu-0"], Enumerable.Range(2, 5).Select(reader.GetString));
        Assert.Equal([11L, 22L, 3L, 1L], Enumerable.Range(7, 4).Select(reader.GetInt64));
        Assert.Equal([1.5, 20.25, 100.5], Enumerable.Range(11, 3).Select(reader.GetDouble));
        Assert.Equal(499, reader.GetInt32(14));
        Assert.Equal(LedgerOutcome.Admitted, reader.GetString(15));
        Assert.Equal(42, reader.GetInt64(16));
    }

    [Fact]
    public void RecordInterrupted_MovesTheJournalIntoTheLedgerOnce()
    {
        using (var connection = LedgerDatabase.Open(_file.Path, create: true))
        using (var insert = new LedgerInsert(connection))
        {
            insert.Run([new(LedgerFile.Interrupted("a", prompt: 40), 1, Opens: true), new(LedgerFile.Interrupted("b", prompt: 60), 2, Opens: true)]);
        }

        using var reopened = _file.Open();
        Assert.Equal(2, LedgerDatabase.RecordInterrupted(reopened));
        Assert.Equal(0, LedgerDatabase.RecordInterrupted(reopened));

        Assert.Equal(0, _file.Count(table: "journal"));
        Assert.Equal(2, _file.Count("model = 'm' AND requested_model = 'auto'"));
        Assert.Equal(2, _file.Count($"outcome = '{LedgerOutcome.Interrupted}' AND estimated = 1 AND completion_tokens = 0 AND worker = '' AND status = 500"));
        Assert.Equal(100L, Scalar(reopened, "SELECT SUM(prompt_tokens) FROM requests"));
        // The prompt estimate at the model's input price (LedgerFile.Interrupted: 1,000 nano-USD a token).
        Assert.Equal(100_000L, Scalar(reopened, "SELECT SUM(cost_nanos) FROM requests"));
    }

    [Fact]
    public void Open_AFileOfSchema3_AddsRequestedModelToBothTables_AndKeepsItsRows()
    {
        // Schema 3's tables, as an earlier gateway made them: the row and journal columns before requested_model.
        const string Columns = "request_id TEXT NOT NULL, time INTEGER NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL, class TEXT NOT NULL, "
            + "model TEXT NOT NULL, worker TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, "
            + "reasoning_tokens INTEGER NOT NULL, estimated INTEGER NOT NULL, queue_wait_ms REAL NOT NULL, ttft_ms REAL, duration_ms REAL NOT NULL, "
            + "status INTEGER NOT NULL, outcome TEXT NOT NULL, cost_nanos INTEGER NOT NULL";
        using (var old = new SqliteConnection($"Data Source={_file.Path};Pooling=False"))
        {
            old.Open();
            Execute(old, $"""
                CREATE TABLE requests (id INTEGER PRIMARY KEY, {Columns});
                CREATE TABLE journal (id INTEGER PRIMARY KEY, {Columns});
                INSERT INTO requests VALUES (1, 'old', 0, 'acme', '', 'default', 'm', 'gpu-0', 7, 0, 0, 0, 0, 0, NULL, 0, 200, 'admitted', 0);
                INSERT INTO journal VALUES (5, 'cut', 0, 'acme', '', 'default', 'm', '', 3, 0, 0, 0, 1, 0, NULL, 0, 500, 'interrupted', 0);
                PRAGMA user_version = 3;
                """);
        }

        _file.Insert(LedgerFile.Row(model: "m", requested: "fast", id: "new"));

        using var connection = _file.Open();
        Assert.Equal(1, LedgerDatabase.RecordInterrupted(connection));
        Assert.Equal((long)LedgerDatabase.SchemaVersion, Scalar(connection, "PRAGMA user_version"));
        Assert.Equal(["cut:", "new:fast", "old:"], Strings(connection, "SELECT request_id || ':' || requested_model FROM requests ORDER BY request_id"));
    }

    private static List<string> Strings(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(reader.GetString(0));
        }

        return values;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    public void Dispose() => _file.Dispose();
}
