using System.Threading.Channels;
using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Threading;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace AotProxy.Ledger;

// The ledger's background batch writer. The hot path hands each RequestRecord to TryRecord, which
// never blocks or awaits: a bounded channel takes it, or it is counted as dropped (and warned
// about, at most every 10 s). One loop drains the channel every batch_interval, or as soon as
// batch_size entries wait, and writes each batch in one transaction. Disposing flushes what is queued.
//
// The journal: at admission the hot path hands TryJournal the `interrupted` row the request
// leaves if the gateway dies before it ends, through the same channel; its final row settles it
// (LedgerEntry). Open moves what a dead process left in the journal into the ledger: a kill -9
// then loses only the requests admitted in its last batch_interval, not every request in flight.
internal sealed class LedgerWriter : IAsyncDisposable
{
    // One warning per 10 s: a full queue under load would otherwise log per request.
    private static readonly TimeSpan DropWarningInterval = TimeSpan.FromSeconds(10);

    private readonly Channel<LedgerEntry> _channel;
    private readonly SqliteConnection _connection;
    private readonly LedgerInsert _insert;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _batchSize;
    private readonly int _capacity;
    private readonly TimeSpan _interval;
    private readonly BackgroundLoop _loop = new();
    private TaskCompletionSource? _batchReady; // set while the loop waits out an interval
    private int _closing;
    private long _pending;
    private long _written;
    private long _dropped;
    private long _lastDropWarning = long.MinValue;
    private long _lastBatchTicks;
    private long _journal; // the last journal number handed out

    private LedgerWriter(string path, SqliteConnection connection, LedgerModel model, TimeProvider time, ILogger logger)
    {
        Path = path;
        _connection = connection;
        _insert = new LedgerInsert(connection);
        _time = time;
        _logger = logger;
        _batchSize = model.BatchSize;
        _capacity = model.QueueCapacity;
        _interval = model.BatchInterval;
        _channel = Channel.CreateBounded<LedgerEntry>(new BoundedChannelOptions(model.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // with TryWrite: a full channel refuses, so the drop is counted
        });
        // Not stopped by the loop's token: it ends once DisposeAsync has completed the channel and
        // it has written every row queued before.
        _loop.Start(_ => RunAsync());
    }

    public string Path { get; }

    public long Written => Interlocked.Read(ref _written);

    public long Dropped => Interlocked.Read(ref _dropped);

    // Entries (rows and journal entries) queued and not yet written (may be briefly off by the
    // entries a batch is taking).
    public long Pending => Math.Max(0, Interlocked.Read(ref _pending));

    public TimeSpan LastBatchDuration => TimeSpan.FromTicks(Interlocked.Read(ref _lastBatchTicks));

    // [store] postgres_url: ships this file's rows to the shared ledger (null: the file is the ledger).
    public LedgerShipper? Shipper { get; private set; }

    // [store] postgres_url, once at startup: starts shipping this file's rows to the shared ledger.
    // seed: returns the shared ledger's totals (every replica's, with this file's rows not yet
    // shipped) to seed the budgets and the monthly counters from; null when not asked, or when
    // Postgres did not answer (the file's own totals stand; its rows ship once it answers).
    public async Task<UsageTotals[]?> ShareAsync(StoreModel store, bool seed, ILogger logger, CancellationToken cancellationToken)
    {
        var shipper = new LedgerShipper(new PostgresLedger(store.Postgres!), Path, store.RetentionMonths, _batchSize, _interval, _time, logger);
        Shipper = shipper;
        var totals = await shipper.OpenAsync(seed, cancellationToken).ConfigureAwait(false);
        shipper.Start();
        return totals;
    }

    // Opens (or creates) the file, reads its totals and starts the writer. Throws
    // LedgerUnavailableException, naming the file or the native library, when it cannot.
    public static LedgerWriter Open(LedgerModel model, TimeProvider time, ILogger logger, out UsageTotals[] totals)
    {
        SqliteConnection? connection = null;
        int interrupted;
        try
        {
            var directory = System.IO.Path.GetDirectoryName(model.Path);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }

            connection = LedgerDatabase.Open(model.Path, create: true);
            interrupted = LedgerDatabase.RecordInterrupted(connection);
            totals = LedgerDatabase.ReadTotals(connection, time.GetUtcNow());
        }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            connection?.Dispose();
            throw new LedgerUnavailableException(
                $"cannot open the usage ledger {model.Path}: the SQLite native library (libe_sqlite3.so) did not load; it must sit next to the aotproxy binary in {AppContext.BaseDirectory} ({ex.GetBaseException().Message})", ex);
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            connection?.Dispose();
            // Own words for the file system's cases: the AOT binary is built with UseSystemResourceKeys,
            // so the runtime's messages are resource keys ("IO_FileNotFound_FileName").
            var reason = ex switch
            {
                UnauthorizedAccessException => "permission denied",
                IOException => "its directory cannot be created",
                _ => ex.Message,
            };
            throw new LedgerUnavailableException($"cannot open the usage ledger {model.Path}: {reason} (set ledger.path to a writable file, or \"\" to run without a ledger)", ex);
        }

        if (interrupted > 0)
        {
            LedgerLog.Interrupted(logger, interrupted, model.Path);
        }

        LedgerLog.Opened(logger, model.Path, totals.Length);
        return new LedgerWriter(model.Path, connection, model, time, logger);
    }

    // journal: what TryJournal returned at the request's admission (0: nothing to settle).
    public bool TryRecord(in RequestRecord record, long journal = 0)
    {
        if (TryQueue(new LedgerEntry(record, journal, Opens: false)))
        {
            return true;
        }

        var dropped = Interlocked.Increment(ref _dropped);
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastDropWarning);
        if ((last == long.MinValue || _time.GetElapsedTime(last, now) >= DropWarningInterval)
            && Interlocked.CompareExchange(ref _lastDropWarning, now, last) == last)
        {
            LedgerLog.Dropping(_logger, _capacity, dropped);
        }

        return false;
    }

    // A journal number, taken at admission (RecordStage.Journal) and kept on the request, so that its
    // final row names it whichever way it ends (an exception included); settling a number that was
    // never journaled is a no-op.
    public long NextJournal() => Interlocked.Increment(ref _journal);

    // At admission: queues `interrupted`, the row to record if the gateway dies before the request
    // ends, as journal entry `journal`. False when the queue is full: that request goes unjournaled
    // (not counted as dropped; its final row may still be written).
    public bool TryJournal(long journal, in RequestRecord interrupted) =>
        TryQueue(new LedgerEntry(interrupted, journal, Opens: true));

    private bool TryQueue(in LedgerEntry entry)
    {
        if (_channel.Writer.TryWrite(entry))
        {
            if (Interlocked.Increment(ref _pending) >= _batchSize)
            {
                Volatile.Read(ref _batchReady)?.TrySetResult();
            }

            return true;
        }

        return false;
    }

    // Writes what is queued (records arriving meanwhile may still be taken) and closes the file.
    public async ValueTask DisposeAsync()
    {
        // Interlocked (full fences) on both sides, with GatherAsync's: the loop either sees the
        // flag or has published the signal that this reads.
        Interlocked.Exchange(ref _closing, 1);
        _channel.Writer.TryComplete();
        Volatile.Read(ref _batchReady)?.TrySetResult();
        await _loop.DisposeAsync().ConfigureAwait(false);
        // After the last batch: the shipper's final round takes it to the shared ledger too.
        if (Shipper is { } shipper)
        {
            await shipper.DisposeAsync().ConfigureAwait(false);
        }

        _insert.Dispose();
        _connection.Dispose();
        LedgerLog.Closed(_logger, Written, Dropped);
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<LedgerEntry>(_batchSize);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            await GatherAsync().ConfigureAwait(false);
            while (batch.Count < _batchSize && reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }

            Interlocked.Add(ref _pending, -batch.Count);
            Write(batch);
            batch.Clear();
        }
    }

    // Lets rows gather for one interval, unless a full batch waits already or the writer is closing.
    private async Task GatherAsync()
    {
        if (Volatile.Read(ref _closing) != 0 || Interlocked.Read(ref _pending) >= _batchSize)
        {
            return;
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _batchReady, ready);
        try
        {
            // Checked again after publishing `ready`: a producer that filled the batch (or a
            // dispose) just before could not have signalled it.
            if (Volatile.Read(ref _closing) == 0 && Interlocked.Read(ref _pending) < _batchSize)
            {
                await Task.WhenAny(ready.Task, Task.Delay(_interval, _time)).ConfigureAwait(false);
            }
        }
        finally
        {
            Volatile.Write(ref _batchReady, null);
        }
    }

    private void Write(List<LedgerEntry> batch)
    {
        var started = _time.GetTimestamp();
        try
        {
            Interlocked.Add(ref _written, _insert.Run(batch));
        }
        catch (SqliteException ex)
        {
            // Disk full, file deleted or locked by another process: the rows are lost to the
            // ledger (the in-memory totals have them), so they count as dropped, never silently.
            // (Its journal entries are lost with them: those requests are unjournaled.)
            var rows = 0;
            foreach (var entry in batch)
            {
                rows += entry.Opens ? 0 : 1;
            }

            Interlocked.Add(ref _dropped, rows);
            LedgerLog.WriteFailed(_logger, ex, rows, Path);
        }

        Interlocked.Exchange(ref _lastBatchTicks, _time.GetElapsedTime(started).Ticks);
    }
}
