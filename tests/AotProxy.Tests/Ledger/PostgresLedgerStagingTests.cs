using AotProxy.Ledger;
using AotProxy.Store;
using AotProxy.Tests.Configuration;
using Npgsql;

namespace AotProxy.Tests.Ledger;

// The shared ledger's staging table (PostgresLedger.ShipAsync) against a real PostgreSQL: made once
// per pooled connection and kept, as designed. perf/ledger.sh found Postgres's catalog taking 3
// rows per batch (the table, its TOAST table and index): Npgsql's reset of a connection returned
// to its pool (DISCARD ALL) dropped the temp table after every batch, and the next batch made it
// again. The table's oid says whether it is the same table.
public sealed class PostgresLedgerStagingTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 10, 0, 0, TimeSpan.Zero);

    private readonly LedgerFile _file = new();
    private readonly FakeTimeProvider _time = new(Now);
    private readonly ListLogger _log = new();
    private PostgresServer _server = null!;
    private PostgresAddress _address = null!;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        Assert.True(PostgresAddress.TryParse(_server.Url, out _address, out var error), error);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _file.Dispose();
    }

    [Fact]
    public async Task TheStagingTable_IsMadeOnce_AndKeptForTheNextBatches()
    {
        _file.Insert(Rows(10, first: 0));
        await using var shipper = new LedgerShipper(new PostgresLedger(_address), _file.Path, 0, 500, TimeSpan.FromHours(1), _time, _log);
        await shipper.OpenAsync(seed: false, CancellationToken.None);
        Assert.True(await shipper.ShipAsync(CancellationToken.None));
        var first = await StagingTablesAsync();

        _file.Insert(Rows(10, first: 10));
        Assert.True(await shipper.ShipAsync(CancellationToken.None));
        _file.Insert(Rows(10, first: 20));
        Assert.True(await shipper.ShipAsync(CancellationToken.None));

        Assert.Single(first);
        Assert.Equal(first, await StagingTablesAsync());
        Assert.Equal(_file.Count(), shipper.Shipped);
    }

    private static RequestRecord[] Rows(int n, int first) =>
        [.. Enumerable.Range(first, n).Select(i => LedgerFile.Row(tenant: "t" + (i % 3), time: Now.AddMinutes(-i), prompt: 10 + i, id: "req-" + i))];

    // The oids of every session's ledger_staging (a temp table: one per connection that made it).
    private async Task<uint[]> StagingTablesAsync()
    {
        await using var connection = new NpgsqlConnection(_server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT oid FROM pg_class WHERE relname = 'ledger_staging' ORDER BY oid", connection);
        var oids = new List<uint>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            oids.Add(reader.GetFieldValue<uint>(0));
        }

        return [.. oids];
    }
}
