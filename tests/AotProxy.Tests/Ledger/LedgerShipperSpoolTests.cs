using AotProxy.Ledger;
using AotProxy.Store;
using AotProxy.Tests.Configuration;
using Npgsql;

namespace AotProxy.Tests.Ledger;

// llm_gateway_ledger_spooled_rows (LedgerShipper.Spooled) while a round is still shipping, against
// a real PostgreSQL. perf/ledger.sh found it at 0 through whole 5 s load runs while the shipper
// fell 66,000-81,000 rows behind: a round under load ships batch after batch and never ends, and
// the count was only taken when one did. Here a lock held on `ledger` by another session keeps a
// round in its first batch for as long as the test wants, without a clock or a sleep.
public sealed class LedgerShipperSpoolTests : IAsyncLifetime
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
    public async Task TheSpool_CountsTheFilesRows_WhileARoundIsStillShippingThem()
    {
        _file.Insert(Rows(1_000));
        await using var shipper = new LedgerShipper(new PostgresLedger(_address), _file.Path, 0, 100, TimeSpan.FromHours(1), _time, _log);
        await shipper.OpenAsync(seed: false, CancellationToken.None);

        await using var blocker = new NpgsqlConnection(_server.ConnectionString);
        await blocker.OpenAsync();
        var hold = await blocker.BeginTransactionAsync();
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE ledger IN EXCLUSIVE MODE", blocker, hold))
        {
            // The round's COPY into its staging table passes; its INSERT INTO ledger waits.
            await lockTable.ExecuteNonQueryAsync();
        }

        var round = shipper.ShipAsync(CancellationToken.None);
        try
        {
            Assert.True(await TestConfig.WaitUntil(() => shipper.Spooled == _file.Count()), $"spooled {shipper.Spooled} of {_file.Count()} rows while the round ships");
            Assert.False(round.IsCompleted);
            Assert.Equal(0, shipper.Shipped);
        }
        finally
        {
            await hold.RollbackAsync();
        }

        Assert.True(await round);
        Assert.Equal(0, shipper.Spooled);
        Assert.Equal(_file.Count(), shipper.Shipped);
    }

    private static RequestRecord[] Rows(int n) =>
        [.. Enumerable.Range(0, n).Select(i => LedgerFile.Row(tenant: "t" + (i % 3), time: Now.AddMinutes(-i), prompt: 10 + i, id: "req-" + i))];
}
