using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Ledger;
using Microsoft.Data.Sqlite;

namespace AotProxy.Tests.Ledger;

// A ledger file in a temp directory of its own, deleted with it.
internal sealed class LedgerFile : IDisposable
{
    private readonly string _directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "aotproxy-ledger-" + Guid.NewGuid().ToString("N"));

    public LedgerFile() => Directory.CreateDirectory(_directory);

    public string Path => System.IO.Path.Combine(_directory, "usage.db");

    public LedgerModel Model(int batchSize = 500, int queueCapacity = 65_536, TimeSpan? interval = null) =>
        new(Path, interval ?? TimeSpan.FromHours(1), batchSize, queueCapacity);

    public static RequestRecord Row(string tenant = "acme", string model = "m", DateTimeOffset? time = null, long prompt = 10, long completion = 5, int status = 200, long cost = 0, bool estimated = false, long cached = 0, string id = "req", string? requested = null) => new(
        id, time ?? new DateTimeOffset(2026, 11, 15, 12, 0, 0, TimeSpan.Zero), tenant, "0123abcd", "default", model, requested ?? model, "gpu-0",
        new Usage(prompt, completion, cached, 0, estimated), 1.5, 20.25, 100.5, status, LedgerOutcome.Admitted, cost);

    // Rows inserted directly, as the writer does.
    public void Insert(params RequestRecord[] rows)
    {
        using var connection = LedgerDatabase.Open(Path, create: true);
        using var insert = new LedgerInsert(connection);
        insert.Run([.. rows.Select(row => new LedgerEntry(row, 0, Opens: false))]);
    }

    public long Count(string where = "1", string table = "requests")
    {
        using var connection = LedgerDatabase.Open(Path, create: false);
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table} WHERE {where}";
        return (long)command.ExecuteScalar()!;
    }

    // The row admission journals for a request (as RecordStage does), priced at 1,000 nano-USD per input token.
    public static RequestRecord Interrupted(string id = "req", string tenant = "acme", long prompt = 10) =>
        RequestRecord.Interrupted(id, new DateTimeOffset(2026, 11, 15, 12, 0, 0, TimeSpan.Zero), tenant, "0123abcd", "default", "m", "auto", prompt, TimeSpan.FromMilliseconds(2), new ModelPrice(1_000, 0, 2_000));

    public SqliteConnection Open() => LedgerDatabase.Open(Path, create: false);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
