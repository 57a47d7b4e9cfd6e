using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace AotProxy.Ledger;

// The writer's statements, prepared once on the connection's own sqlite3 handle and bound per row
// through SQLitePCL.raw: numbers as int64/double and strings as UTF-16 spans, so a row allocates
// nothing. (SqliteCommand boxes every number and encodes every string to a new byte[], about
// 1.9 KB per row: at 20k requests/s the writer's garbage outweighed the whole request path's.)
// A batch is one transaction (~0.8 ms per 500 rows, against a commit per row that would cost a
// WAL append each): its rows, its journal entries and the journal entries its rows settle.
internal sealed class LedgerInsert : IDisposable
{
    // A 404's model is whatever the client sent; real model names are far shorter.
    private const int MaxModelLength = 256;

    private const string Values = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20";

    private readonly SqliteConnection _connection;
    private readonly sqlite3_stmt _row;
    private readonly sqlite3_stmt _open;
    private readonly sqlite3_stmt _settle;

    // The journal numbers a batch's final rows settle, found before the batch is written: an
    // entry opened and settled in one batch is never written (most requests end within the
    // batch_interval they were admitted in), nor deleted. Kept across batches: no allocation.
    private readonly HashSet<long> _settled = [];

    public LedgerInsert(SqliteConnection connection)
    {
        _connection = connection;
        _row = Prepare($"INSERT INTO requests ({LedgerDatabase.Columns}) VALUES ({Values})");
        _open = Prepare($"INSERT INTO journal ({LedgerDatabase.Columns}, id) VALUES ({Values}, ?21)");
        _settle = Prepare("DELETE FROM journal WHERE id = ?1");
    }

    // Returns the rows written to `requests`.
    public int Run(List<LedgerEntry> batch)
    {
        var entries = CollectionsMarshal.AsSpan(batch);
        _settled.Clear();
        foreach (ref readonly var entry in entries)
        {
            if (entry is { Opens: false, Journal: > 0 })
            {
                _settled.Add(entry.Journal);
            }
        }

        var rows = 0;
        using var transaction = _connection.BeginTransaction();
        foreach (ref readonly var entry in entries)
        {
            if (entry.Opens)
            {
                // Settled in this batch: its final row follows; the removal tells that row so.
                if (!_settled.Remove(entry.Journal))
                {
                    Bind(_open, entry.Row);
                    raw.sqlite3_bind_int64(_open, 21, entry.Journal);
                    Step(_open);
                }

                continue;
            }

            Bind(_row, entry.Row);
            Step(_row);
            rows++;
            if (entry.Journal > 0 && _settled.Remove(entry.Journal))
            {
                raw.sqlite3_bind_int64(_settle, 1, entry.Journal);
                Step(_settle);
            }
        }

        transaction.Commit();
        return rows;
    }

    public void Dispose()
    {
        _row.Dispose();
        _open.Dispose();
        _settle.Dispose();
    }

    private static void Bind(sqlite3_stmt s, in RequestRecord row)
    {
        Text(s, 1, row.RequestId);
        raw.sqlite3_bind_int64(s, 2, row.Time.ToUnixTimeMilliseconds());
        Text(s, 3, row.Tenant);
        Text(s, 4, row.KeyId);
        Text(s, 5, row.Class);
        Text(s, 6, Capped(row.Model));
        Text(s, 7, Capped(row.RequestedModel));
        Text(s, 8, row.Worker);
        raw.sqlite3_bind_int64(s, 9, row.Usage.PromptTokens);
        raw.sqlite3_bind_int64(s, 10, row.Usage.CompletionTokens);
        raw.sqlite3_bind_int64(s, 11, row.Usage.CachedPromptTokens);
        raw.sqlite3_bind_int64(s, 12, row.Usage.ReasoningTokens);
        raw.sqlite3_bind_int64(s, 13, row.Usage.Estimated ? 1 : 0);
        raw.sqlite3_bind_double(s, 14, row.QueueWaitMs);
        if (row.TtftMs is { } ttft)
        {
            raw.sqlite3_bind_double(s, 15, ttft);
        }
        else
        {
            raw.sqlite3_bind_null(s, 15);
        }

        raw.sqlite3_bind_double(s, 16, row.DurationMs);
        raw.sqlite3_bind_int64(s, 17, row.Status);
        Text(s, 18, row.Outcome);
        raw.sqlite3_bind_int64(s, 19, row.CostNanos);
        raw.sqlite3_bind_int64(s, 20, row.CacheHit ? 1 : 0);
    }

    private static ReadOnlySpan<char> Capped(string model) => model.AsSpan(0, Math.Min(model.Length, MaxModelLength));

    // SQLite copies the text (SQLITE_TRANSIENT), so the span need not outlive the call.
    private static void Text(sqlite3_stmt statement, int index, ReadOnlySpan<char> value) =>
        raw.sqlite3_bind_text16(statement, index, value);

    private sqlite3_stmt Prepare(string sql)
    {
        Check(raw.sqlite3_prepare_v2(_connection.Handle, sql, out var statement));
        return statement;
    }

    private void Step(sqlite3_stmt statement)
    {
        var stepped = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        if (stepped != raw.SQLITE_DONE)
        {
            Check(stepped);
        }
    }

    private void Check(int code)
    {
        if (code != raw.SQLITE_OK)
        {
            throw new SqliteException(raw.sqlite3_errmsg(_connection.Handle).utf8_to_string(), code);
        }
    }
}
