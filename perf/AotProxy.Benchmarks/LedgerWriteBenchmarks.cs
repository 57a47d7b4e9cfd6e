using AotProxy.Ledger;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The journal's cost per request on the ledger's writer thread (issue 14), against the ledger as
// it was, one row per request: a batch of 500 requests (ledger.batch_size's default) into a real
// SQLite file (WAL, synchronous=NORMAL, as the gateway opens it), one transaction each; per
// request through OperationsPerInvoke. Settled in its batch: a request that ends within the
// batch_interval it was admitted in (most non-stream ones); in the next batch: one that outlives
// it (a long stream), whose entry is inserted and then deleted with its row. The tables are
// emptied after each iteration (with IterationCleanup, BenchmarkDotNet invokes once per
// iteration: one batch, ~1-5 ms), so every case writes into the same small file.
[MemoryDiagnoser]
public class LedgerWriteBenchmarks
{
    private const int Batch = 500;

    private readonly List<LedgerEntry> _rows = new(Batch);
    private readonly List<LedgerEntry> _opens = new(Batch);
    private readonly List<LedgerEntry> _finals = new(Batch);
    private readonly List<LedgerEntry> _both = new(2 * Batch);
    private DirectoryInfo _directory = null!;
    private Microsoft.Data.Sqlite.SqliteConnection _connection = null!;
    private LedgerInsert _insert = null!;
    private long _journal;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("aotproxy-bench-ledger-");
        _connection = LedgerDatabase.Open(Path.Combine(_directory.FullName, "usage.db"), create: true);
        _insert = new LedgerInsert(_connection);
    }

    [IterationCleanup]
    public void Empty()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "DELETE FROM requests; DELETE FROM journal;";
        command.ExecuteNonQuery();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _insert.Dispose();
        _connection.Dispose();
        _directory.Delete(recursive: true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public int RowsOnly()
    {
        _rows.Clear();
        for (var i = 0; i < Batch; i++)
        {
            _rows.Add(new LedgerEntry(LedgerSample.Row(i), 0, Opens: false));
        }

        return _insert.Run(_rows);
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int JournalSettledInItsBatch()
    {
        _both.Clear();
        var first = _journal + 1;
        for (var i = 0; i < Batch; i++)
        {
            _both.Add(new LedgerEntry(LedgerSample.Interrupted(i), ++_journal, Opens: true));
        }

        for (var i = 0; i < Batch; i++)
        {
            _both.Add(new LedgerEntry(LedgerSample.Row(i), first + i, Opens: false));
        }

        return _insert.Run(_both);
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int JournalSettledInTheNextBatch()
    {
        _opens.Clear();
        _finals.Clear();
        for (var i = 0; i < Batch; i++)
        {
            _opens.Add(new LedgerEntry(LedgerSample.Interrupted(i), ++_journal, Opens: true));
            _finals.Add(new LedgerEntry(LedgerSample.Row(i), _journal, Opens: false));
        }

        return _insert.Run(_opens) + _insert.Run(_finals);
    }
}
