using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;
using AotProxy.Accounting;
using AotProxy.Store;
using Npgsql;
using NpgsqlTypes;

namespace AotProxy.Ledger;

// The shared ledger on PostgreSQL (docs/STORE.md, "The ledger on Postgres"): every replica's rows
// in one table, partitioned by month on the arrival time. A row's key is where it was written
// first: its replica's local ledger file (ledger_id, a UUID the file keeps) and its row number
// there (row_id), plus the partition key, which PostgreSQL requires in a partitioned table's
// unique index. A batch goes in with binary COPY into a temp staging table, then one
// INSERT ... SELECT ... ON CONFLICT DO NOTHING: a batch shipped twice (a retry after a lost
// commit, a replay) counts once. The client's x-request-id is not the key: clients reuse it.
// ledger_sources holds, per ledger file, the last row shipped, written in the same transaction
// as the rows.
internal sealed class PostgresLedger : IAsyncDisposable
{
    // pg_advisory_xact_lock's key: replicas starting together create the schema and the month
    // partitions one at a time (concurrent CREATE ... IF NOT EXISTS can fail on the catalog).
    private const long SchemaLock = 0x4c45_4447_4552; // "LEDGER"

    private const string Columns = """
        ledger_id, row_id, request_id, time, tenant, key_id, class, model, requested_model, worker,
        prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, estimated,
        queue_wait_ms, ttft_ms, duration_ms, status, outcome, cost_nanos, cache_hit
        """;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS ledger (
            ledger_id         uuid             NOT NULL,  -- the replica's local ledger file
            row_id            bigint           NOT NULL,  -- the row's number in that file
            request_id        text             NOT NULL,  -- x-request-id: the client's, or made by the gateway
            time              timestamptz      NOT NULL,  -- arrival
            tenant            text             NOT NULL,
            key_id            text             NOT NULL,
            class             text             NOT NULL,
            model             text             NOT NULL,  -- the served model
            requested_model   text             NOT NULL DEFAULT '',  -- as the client asked: an alias, "auto", or the model
            worker            text             NOT NULL,
            prompt_tokens     bigint           NOT NULL,
            completion_tokens bigint           NOT NULL,
            cached_tokens     bigint           NOT NULL,  -- part of prompt_tokens
            reasoning_tokens  bigint           NOT NULL,  -- part of completion_tokens
            estimated         boolean          NOT NULL,
            queue_wait_ms     double precision NOT NULL,
            ttft_ms           double precision,
            duration_ms       double precision NOT NULL,
            status            integer          NOT NULL,
            outcome           text             NOT NULL,
            cost_nanos        bigint           NOT NULL,  -- nano-USD
            cache_hit         boolean          NOT NULL DEFAULT false,  -- answered from the response cache
            PRIMARY KEY (ledger_id, row_id, time)
        ) PARTITION BY RANGE (time);
        -- Added with the response cache: a ledger made before it gets the column (partitions follow).
        ALTER TABLE ledger ADD COLUMN IF NOT EXISTS cache_hit boolean NOT NULL DEFAULT false;
        -- A ledger made before requested_model: its rows get '' (not recorded).
        ALTER TABLE ledger ADD COLUMN IF NOT EXISTS requested_model text NOT NULL DEFAULT '';
        CREATE INDEX IF NOT EXISTS ledger_tenant_time ON ledger (tenant, time);
        CREATE TABLE IF NOT EXISTS ledger_sources (
            ledger_id uuid        PRIMARY KEY,
            shipped   bigint      NOT NULL,  -- the last row_id of this file in ledger
            updated   timestamptz NOT NULL
        );
        """;

    private const string PartitionPrefix = "ledger_y";

    private readonly NpgsqlDataSource _source;

    // The months whose partition exists (yyyy * 12 + month - 1): created once per process.
    private readonly HashSet<int> _months = [];

    public PostgresLedger(PostgresAddress address)
    {
        Address = address;
        // The slim builder: text, numbers, booleans, timestamps and COPY, without the reflection
        // the full builder's plugins need (the AOT publish warns of none).
        var builder = new NpgsqlSlimDataSourceBuilder(address.ConnectionString());
        // No DISCARD ALL when a connection goes back to the pool: it dropped the staging temp
        // table after every batch, and Postgres made it again for the next (3 catalog rows per
        // 500 shipped: perf/ledger.sh). Nothing else here leaves session state: the advisory
        // locks are the transaction's.
        builder.ConnectionStringBuilder.NoResetOnClose = true;
        _source = builder.Build();
    }

    public PostgresAddress Address { get; }

    // The oldest month kept (yyyy * 12 + month - 1) when `retentionMonths` months are kept before
    // `now`'s; int.MinValue: all.
    public static int OldestKept(DateTimeOffset now, int retentionMonths) =>
        retentionMonths <= 0 ? int.MinValue : MonthOf(now.UtcDateTime) - retentionMonths;

    // The schema, this month's partition and the next (so the first rows of a month need no DDL),
    // and what this ledger file has shipped before (0: nothing).
    public async Task<long> OpenAsync(Guid ledgerId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var month = MonthOf(now.UtcDateTime);
        var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var transactionScope = transaction.ConfigureAwait(false);
            await LockAsync(connection, cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, Schema, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        await EnsureMonthsAsync([month, month + 1], cancellationToken).ConfigureAwait(false);
        return await ShippedAsync(ledgerId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<long> ShippedAsync(Guid ledgerId, CancellationToken cancellationToken)
    {
        using var command = _source.CreateCommand("SELECT shipped FROM ledger_sources WHERE ledger_id = $1");
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = ledgerId });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long shipped ? shipped : 0;
    }

    // Writes `rows` (this file's, in row order) in one transaction and records the last as
    // shipped. Rows of a month before `oldestKept` are left out: their partition was dropped.
    // Returns the rows that were new (the rest were there already: a retry or a replay).
    public async Task<int> ShipAsync(Guid ledgerId, List<SpooledRow> rows, int oldestKept, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return 0;
        }

        var months = new HashSet<int>();
        foreach (ref readonly var row in CollectionsMarshal.AsSpan(rows))
        {
            var month = MonthOf(row.Row.Time.UtcDateTime);
            if (month >= oldestKept)
            {
                months.Add(month);
            }
        }

        await EnsureMonthsAsync(months, cancellationToken).ConfigureAwait(false);
        var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transactionScope = transaction.ConfigureAwait(false);
        // Per connection (pooled connections keep it), emptied by every commit.
        await ExecuteAsync(connection, "CREATE TEMP TABLE IF NOT EXISTS ledger_staging (LIKE ledger) ON COMMIT DELETE ROWS", cancellationToken).ConfigureAwait(false);
        var import = await connection.BeginBinaryImportAsync($"COPY ledger_staging ({Columns}) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
        await using (import.ConfigureAwait(false))
        {
            foreach (var row in rows)
            {
                if (MonthOf(row.Row.Time.UtcDateTime) >= oldestKept)
                {
                    await WriteAsync(import, ledgerId, row, cancellationToken).ConfigureAwait(false);
                }
            }

            await import.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        int inserted;
        using (var insert = new NpgsqlCommand($"INSERT INTO ledger ({Columns}) SELECT {Columns} FROM ledger_staging ON CONFLICT DO NOTHING", connection, transaction))
        {
            inserted = await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        using (var shipped = new NpgsqlCommand(
            """
            INSERT INTO ledger_sources (ledger_id, shipped, updated) VALUES ($1, $2, now())
            ON CONFLICT (ledger_id) DO UPDATE SET shipped = GREATEST(ledger_sources.shipped, excluded.shipped), updated = now()
            """,
            connection,
            transaction))
        {
            shipped.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = ledgerId });
            shipped.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rows[^1].Id });
            await shipped.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return inserted;
    }

    // Drops the month partitions older than `oldestKept`: whole tables, no row-by-row delete.
    // Returns the partitions dropped.
    public async Task<int> DropOldAsync(int oldestKept, CancellationToken cancellationToken)
    {
        if (oldestKept == int.MinValue)
        {
            return 0;
        }

        var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transactionScope = transaction.ConfigureAwait(false);
        await LockAsync(connection, cancellationToken).ConfigureAwait(false);
        var old = new List<string>();
        using (var list = new NpgsqlCommand(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = 'ledger' AND p.relnamespace = current_schema()::regnamespace
            """,
            connection,
            transaction))
        {
            var reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var name = reader.GetString(0);
                    if (TryParsePartition(name, out var month) && month < oldestKept)
                    {
                        old.Add(name);
                    }
                }
            }
        }

        foreach (var name in old)
        {
            await ExecuteAsync(connection, $"DROP TABLE IF EXISTS {name}", cancellationToken).ConfigureAwait(false);
            lock (_months)
            {
                _months.Remove(TryParsePartition(name, out var month) ? month : 0);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return old.Count;
    }

    // Per tenant: tokens and cost, all time and in now's calendar month (UTC): every replica's rows.
    public async Task<UsageTotals[]> ReadTotalsAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        [.. (await ReadTotalsAsync(now, byLedger: false, cancellationToken).ConfigureAwait(false)).Select(t => t.Totals)];

    // The same totals per ledger file (ledger_id) and tenant, in ledger then tenant order: what a
    // cluster's epoch seeds from the ledgers no live replica charged (StoreResync).
    public Task<List<(Guid Ledger, UsageTotals Totals)>> ReadTotalsByLedgerAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        ReadTotalsAsync(now, byLedger: true, cancellationToken);

    // One query for both: byLedger adds ledger_id to the grouping (Guid.Empty otherwise).
    private async Task<List<(Guid Ledger, UsageTotals Totals)>> ReadTotalsAsync(DateTimeOffset now, bool byLedger, CancellationToken cancellationToken)
    {
        var utc = now.UtcDateTime;
        var ledger = byLedger ? "ledger_id, " : string.Empty;
        using var command = _source.CreateCommand(
            $"""
            SELECT {ledger}tenant,
                   sum(prompt_tokens + completion_tokens)::bigint,
                   coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE time >= $1), 0)::bigint,
                   sum(cost_nanos)::bigint,
                   coalesce(sum(cost_nanos) FILTER (WHERE time >= $1), 0)::bigint
            FROM ledger
            WHERE tenant <> ''
            GROUP BY {ledger}tenant
            ORDER BY {ledger}tenant COLLATE "C"
            """);
        command.Parameters.Add(new NpgsqlParameter<DateTime> { TypedValue = new DateTime(utc.Year, utc.Month, 1, 0, 0, 0, DateTimeKind.Utc), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var totals = new List<(Guid, UsageTotals)>();
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        var first = byLedger ? 1 : 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            totals.Add((
                byLedger ? reader.GetGuid(0) : Guid.Empty,
                new UsageTotals(reader.GetString(first), reader.GetInt64(first + 1), reader.GetInt64(first + 2), reader.GetInt64(first + 3), reader.GetInt64(first + 4))));
        }

        return totals;
    }

    // `aotproxy usage` and GET /api/usage over every replica's rows: the same rows as UsageQuery.Run
    // gives over a local file (the day in UTC, the keys in byte order).
    public async Task<UsageRow[]> RunAsync(UsageQuery query, CancellationToken cancellationToken)
    {
        var key = query.GroupKey("to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
        using var command = _source.CreateCommand($"""
            SELECT {key}, count(*), sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint, sum(cached_tokens)::bigint,
                   count(*) FILTER (WHERE estimated), sum(cost_nanos)::bigint, count(*) FILTER (WHERE status >= 400),
                   count(*) FILTER (WHERE cache_hit)
            FROM ledger
            WHERE ($1::timestamptz IS NULL OR time >= $1) AND ($2::timestamptz IS NULL OR time < $2)
            GROUP BY 1
            ORDER BY {key} COLLATE "C"
            """);
        command.Parameters.Add(Time(query.Since));
        command.Parameters.Add(Time(query.Until));
        var rows = new List<UsageRow>();
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(UsageRow.Read(reader));
        }

        return [.. rows];
    }

    // After a failure: the idle pooled connections may be cut (a Postgres restart closes them all),
    // and each would fail its next command; the next round opens new ones.
    public void ClearPool() => _source.Clear();

    public ValueTask DisposeAsync() => _source.DisposeAsync();

    internal static int MonthOf(DateTime utc) => (utc.Year * 12) + utc.Month - 1;

    internal static string PartitionName(int month) =>
        string.Create(CultureInfo.InvariantCulture, $"{PartitionPrefix}{month / 12:D4}m{(month % 12) + 1:D2}");

    private static bool TryParsePartition(string name, out int month)
    {
        month = 0;
        // ledger_y2026m12
        if (name.Length != PartitionPrefix.Length + 7 || !name.StartsWith(PartitionPrefix, StringComparison.Ordinal) || name[PartitionPrefix.Length + 4] != 'm'
            || !int.TryParse(name.AsSpan(PartitionPrefix.Length, 4), NumberStyles.None, CultureInfo.InvariantCulture, out var year)
            || !int.TryParse(name.AsSpan(PartitionPrefix.Length + 5, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var monthOfYear)
            || monthOfYear is < 1 or > 12)
        {
            return false;
        }

        month = (year * 12) + monthOfYear - 1;
        return true;
    }

    private static NpgsqlParameter Time(DateTimeOffset? time) => new()
    {
        NpgsqlDbType = NpgsqlDbType.TimestampTz,
        Value = time is { } t ? t.UtcDateTime : DBNull.Value,
    };

    private static async Task WriteAsync(NpgsqlBinaryImporter import, Guid ledgerId, SpooledRow spooled, CancellationToken cancellationToken)
    {
        var row = spooled.Row;
        await import.StartRowAsync(cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(ledgerId, NpgsqlDbType.Uuid, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(spooled.Id, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.RequestId, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Time.UtcDateTime, NpgsqlDbType.TimestampTz, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Tenant, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.KeyId, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Class, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Model, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.RequestedModel, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Worker, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Usage.PromptTokens, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Usage.CompletionTokens, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Usage.CachedPromptTokens, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Usage.ReasoningTokens, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Usage.Estimated, NpgsqlDbType.Boolean, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.QueueWaitMs, NpgsqlDbType.Double, cancellationToken).ConfigureAwait(false);
        if (row.TtftMs is { } ttft)
        {
            await import.WriteAsync(ttft, NpgsqlDbType.Double, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await import.WriteNullAsync(cancellationToken).ConfigureAwait(false);
        }

        await import.WriteAsync(row.DurationMs, NpgsqlDbType.Double, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Status, NpgsqlDbType.Integer, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.Outcome, NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.CostNanos, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
        await import.WriteAsync(row.CacheHit, NpgsqlDbType.Boolean, cancellationToken).ConfigureAwait(false);
    }

    // Holds the schema lock until the transaction ends.
    private static async Task LockAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = SchemaLock });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    [SuppressMessage("Security", "CA2100:Review SQL queries for security vulnerabilities", Justification = "This class's constant statements and partition names it formats from numbers only.")]
    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task EnsureMonthsAsync(IEnumerable<int> months, CancellationToken cancellationToken)
    {
        List<int> missing;
        lock (_months)
        {
            missing = months.Where(m => !_months.Contains(m)).ToList();
        }

        if (missing.Count == 0)
        {
            return;
        }

        var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transactionScope = transaction.ConfigureAwait(false);
        await LockAsync(connection, cancellationToken).ConfigureAwait(false);
        foreach (var month in missing)
        {
            var from = new DateTime(month / 12, (month % 12) + 1, 1, 0, 0, 0, DateTimeKind.Utc);
            var to = from.AddMonths(1);
            await ExecuteAsync(
                connection,
                string.Create(CultureInfo.InvariantCulture, $"CREATE TABLE IF NOT EXISTS {PartitionName(month)} PARTITION OF ledger FOR VALUES FROM ('{from:yyyy-MM-dd} 00:00:00+00') TO ('{to:yyyy-MM-dd} 00:00:00+00')"),
                cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        lock (_months)
        {
            _months.UnionWith(missing);
        }
    }
}
