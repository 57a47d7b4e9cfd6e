using System.Diagnostics.CodeAnalysis;
using AotProxy.Accounting;
using Microsoft.Data.Sqlite;

namespace AotProxy.Ledger;

// The SQLite file: opening it (every connection gets the same pragmas), its schema, and the
// per-tenant totals the gateway rebuilds its counters from at startup.
internal static class LedgerDatabase
{
    // PRAGMA user_version: a later schema change can migrate a file it recognizes.
    // 2: the journal table (a version 1 file gets it at the next start).
    // 3: the meta table and the file's ledger_id (the shared ledger's key for its rows).
    // 4: requested_model and cache_hit in requests and journal (an older file gets them at the next
    // open: EnsureColumns).
    public const int SchemaVersion = 4;

    // The columns of a row, in both tables, in LedgerInsert's binding order.
    public const string Columns = """
        request_id, time, tenant, key_id, class, model, requested_model, worker,
        prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, estimated,
        queue_wait_ms, ttft_ms, duration_ms, status, outcome, cost_nanos, cache_hit
        """;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS requests (
            id                INTEGER PRIMARY KEY,
            request_id        TEXT    NOT NULL,
            time              INTEGER NOT NULL,  -- arrival, Unix milliseconds (UTC)
            tenant            TEXT    NOT NULL,
            key_id            TEXT    NOT NULL,  -- first 8 hex digits of the API key's SHA-256, or ''
            class             TEXT    NOT NULL,
            model             TEXT    NOT NULL,  -- the served model
            requested_model   TEXT    NOT NULL DEFAULT '',  -- as the client asked: an alias, "auto", or the model
            worker            TEXT    NOT NULL,
            prompt_tokens     INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cached_tokens     INTEGER NOT NULL,  -- part of prompt_tokens
            reasoning_tokens  INTEGER NOT NULL,  -- part of completion_tokens
            estimated         INTEGER NOT NULL,  -- 1: the response ended without usage; the gateway estimated it
            queue_wait_ms     REAL    NOT NULL,
            ttft_ms           REAL,
            duration_ms       REAL    NOT NULL,
            status            INTEGER NOT NULL,
            outcome           TEXT    NOT NULL,
            cost_nanos        INTEGER NOT NULL,  -- nano-USD
            cache_hit         INTEGER NOT NULL DEFAULT 0  -- 1: answered from the response cache
        );
        CREATE INDEX IF NOT EXISTS requests_time ON requests (time);
        CREATE INDEX IF NOT EXISTS requests_tenant_time ON requests (tenant, time);
        -- Admitted requests not yet ended, each as the `interrupted` row it leaves if the gateway
        -- dies first (id: the writer's journal number). A request's final row deletes its entry
        -- in the same transaction; the next start moves what is left into requests.
        CREATE TABLE IF NOT EXISTS journal (
            id                INTEGER PRIMARY KEY,
            request_id        TEXT    NOT NULL,
            time              INTEGER NOT NULL,
            tenant            TEXT    NOT NULL,
            key_id            TEXT    NOT NULL,
            class             TEXT    NOT NULL,
            model             TEXT    NOT NULL,
            requested_model   TEXT    NOT NULL DEFAULT '',
            worker            TEXT    NOT NULL,
            prompt_tokens     INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cached_tokens     INTEGER NOT NULL,
            reasoning_tokens  INTEGER NOT NULL,
            estimated         INTEGER NOT NULL,
            queue_wait_ms     REAL    NOT NULL,
            ttft_ms           REAL,
            duration_ms       REAL    NOT NULL,
            status            INTEGER NOT NULL,
            outcome           TEXT    NOT NULL,
            cost_nanos        INTEGER NOT NULL,
            cache_hit         INTEGER NOT NULL DEFAULT 0
        );
        -- ledger_id: a UUID made with the file, naming its rows in the shared ledger ([store]).
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(16))));
        PRAGMA user_version = 4;
        """;

    // create: make the file and its schema if missing (the gateway); otherwise the file must exist
    // (`aotproxy usage` must not leave an empty ledger behind a mistyped path).
    public static SqliteConnection Open(string path, bool create)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
            // Unpooled: a disposed connection really closes the file, so the last one out
            // checkpoints the WAL and tests can delete their directories.
            Pooling = false,
        }.ToString());
        try
        {
            connection.Open();
            // WAL: readers (/api/usage, `aotproxy usage`) never block the writer. NORMAL: a commit
            // survives a process crash (kill -9); only a power loss can take the last ones.
            // Set on every open: synchronous is per connection.
            Execute(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
            if (create)
            {
                Execute(connection, Schema);
            }

            EnsureColumns(connection);

            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    // A file made before a column was added gets it (SQLite has no ADD COLUMN IF NOT EXISTS), with
    // its default for the rows it holds; `aotproxy usage` on such a file too (its report reads them).
    private static void EnsureColumns(SqliteConnection connection)
    {
        foreach (var table in (ReadOnlySpan<string>)["requests", "journal"])
        {
            if (!TableExists(connection, table))
            {
                continue;
            }

            EnsureColumn(connection, table, "requested_model", "TEXT NOT NULL DEFAULT ''");
            EnsureColumn(connection, table, "cache_hit", "INTEGER NOT NULL DEFAULT 0");
        }
    }

    // Adds the column to an existing table unless it is there. Names and definitions are the
    // callers' constants, never input.
    public static void EnsureColumn(SqliteConnection connection, string table, string column, string definition)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM pragma_table_info($table) WHERE name = $column";
        command.Parameters.AddWithValue("$table", table);
        command.Parameters.AddWithValue("$column", column);
        if ((long)command.ExecuteScalar()! == 0)
        {
            Execute(connection, $"ALTER TABLE {table} ADD COLUMN {column} {definition}");
        }
    }

    private static bool TableExists(SqliteConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $table";
        command.Parameters.AddWithValue("$table", table);
        return (long)command.ExecuteScalar()! > 0;
    }

    // At startup, before the totals are read and before any new entry: what the journal holds
    // belongs to requests the last process admitted and never ended. Each becomes its
    // `interrupted` row, once: the move is one transaction. Returns how many.
    public static int RecordInterrupted(SqliteConnection connection)
    {
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"INSERT INTO requests ({Columns}) SELECT {Columns} FROM journal ORDER BY id";
        var moved = command.ExecuteNonQuery();
        command.CommandText = "DELETE FROM journal";
        command.ExecuteNonQuery();
        transaction.Commit();
        return moved;
    }

    // The UUID the file was made with: its rows' ledger_id in the shared ledger.
    public static Guid LedgerId(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM meta WHERE key = 'ledger_id'";
        return Guid.ParseExact((string)command.ExecuteScalar()!, "N");
    }

    // Up to `limit` rows after row `after`, in row order, into `rows` (cleared first).
    public static void ReadAfter(SqliteConnection connection, long after, int limit, List<SpooledRow> rows)
    {
        rows.Clear();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id, {Columns} FROM requests WHERE id > $after ORDER BY id LIMIT $limit";
        command.Parameters.AddWithValue("$after", after);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new SpooledRow(reader.GetInt64(0), new RequestRecord(
                reader.GetString(1),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)),
                reader.GetString(3),
                reader.GetString(4),
                reader.GetString(5),
                reader.GetString(6),
                reader.GetString(7),
                reader.GetString(8),
                new Usage(reader.GetInt64(9), reader.GetInt64(10), reader.GetInt64(11), reader.GetInt64(12), reader.GetInt64(13) != 0),
                reader.GetDouble(14),
                reader.IsDBNull(15) ? null : reader.GetDouble(15),
                reader.GetDouble(16),
                reader.GetInt32(17),
                reader.GetString(18),
                reader.GetInt64(19),
                reader.GetInt64(20) != 0)));
        }
    }

    // The last row's number (0: none).
    public static long LastId(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT coalesce(max(id), 0) FROM requests";
        return (long)command.ExecuteScalar()!;
    }

    // Per tenant with rows: tokens and cost, all time and in now's calendar month (UTC); only the
    // rows after row `after` (those not yet in the shared ledger, LedgerWriter.Open).
    public static UsageTotals[] ReadTotals(SqliteConnection connection, DateTimeOffset now, long after = 0)
    {
        var utc = now.ToUniversalTime();
        var monthStart = new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT tenant,
                   SUM(prompt_tokens + completion_tokens),
                   SUM(CASE WHEN time >= $month THEN prompt_tokens + completion_tokens ELSE 0 END),
                   SUM(cost_nanos),
                   SUM(CASE WHEN time >= $month THEN cost_nanos ELSE 0 END)
            FROM requests
            WHERE tenant <> '' AND id > $after
            GROUP BY tenant
            ORDER BY tenant
            """;
        command.Parameters.AddWithValue("$month", monthStart);
        command.Parameters.AddWithValue("$after", after);
        using var reader = command.ExecuteReader();
        var totals = new List<UsageTotals>();
        while (reader.Read())
        {
            totals.Add(new UsageTotals(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }

        return [.. totals];
    }

    [SuppressMessage("Security", "CA2100:Review SQL queries for security vulnerabilities", Justification = "Called with this class's constant schema statements only.")]
    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
