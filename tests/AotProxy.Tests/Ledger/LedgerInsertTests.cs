using AotProxy.Ledger;

namespace AotProxy.Tests.Ledger;

// The writer's batches: rows, journal entries, and the entries rows settle, one transaction each.
public sealed class LedgerInsertTests : IDisposable
{
    private readonly LedgerFile _file = new();

    [Fact]
    public void Run_EntryOpenedAndSettledInOneBatch_WritesOnlyTheRow()
    {
        using var connection = LedgerDatabase.Open(_file.Path, create: true);
        using var insert = new LedgerInsert(connection);

        var rows = insert.Run([Open(1, "a"), Open(2, "b"), Final(1, "a"), Final(0, "c")]);

        Assert.Equal(2, rows);
        Assert.Equal(2, _file.Count());
        Assert.Equal(1, _file.Count("id = 2 AND request_id = 'b'", table: "journal"));
        Assert.Equal(1, _file.Count(table: "journal"));
    }

    [Fact]
    public void Run_EntrySettledInALaterBatch_IsWrittenThenDeletedWithTheRow()
    {
        using var connection = LedgerDatabase.Open(_file.Path, create: true);
        using var insert = new LedgerInsert(connection);

        Assert.Equal(0, insert.Run([Open(7, "a")]));
        Assert.Equal(1, _file.Count("id = 7", table: "journal"));

        Assert.Equal(1, insert.Run([Final(7, "a")]));
        Assert.Equal(0, _file.Count(table: "journal"));
        Assert.Equal(1, _file.Count("request_id = 'a' AND outcome <> 'interrupted'"));
    }

    [Fact]
    public void Run_RowSettlingANumberNeverJournaled_WritesTheRow()
    {
        using var connection = LedgerDatabase.Open(_file.Path, create: true);
        using var insert = new LedgerInsert(connection);
        insert.Run([Open(3, "other")]);

        // An exception before admission: the final row names the request's number, never opened.
        Assert.Equal(1, insert.Run([Final(4, "a")]));

        Assert.Equal(1, _file.Count("request_id = 'a'"));
        Assert.Equal(1, _file.Count("id = 3", table: "journal"));
    }

    private static LedgerEntry Open(long journal, string id) => new(LedgerFile.Interrupted(id), journal, Opens: true);

    private static LedgerEntry Final(long journal, string id) => new(LedgerFile.Row(id: id), journal, Opens: false);

    public void Dispose() => _file.Dispose();
}
