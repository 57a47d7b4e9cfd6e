using Microsoft.Data.Sqlite;

namespace AotProxy.Ledger;

// The writer's one INSERT, prepared once and re-bound per row; a batch is one transaction
// (~0.8 ms per 500 rows, against a commit per row that would cost an fsync-ish WAL append each).
internal sealed class LedgerInsert : IDisposable
{
    // A 404's model is whatever the client sent; real model names are far shorter.
    private const int MaxModelLength = 256;

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _command;
    private readonly SqliteParameter[] _values;

    public LedgerInsert(SqliteConnection connection)
    {
        _connection = connection;
        _command = connection.CreateCommand();
        _command.CommandText = """
            INSERT INTO requests (request_id, time, tenant, key_id, class, model, worker,
                prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, estimated,
                queue_wait_ms, ttft_ms, duration_ms, status, outcome, cost_nanos)
            VALUES ($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
            """;
        _values = new SqliteParameter[18];
        for (var i = 0; i < _values.Length; i++)
        {
            _values[i] = _command.Parameters.Add(new SqliteParameter("$" + i, null));
        }
    }

    public void Run(List<RequestRecord> rows)
    {
        using var transaction = _connection.BeginTransaction();
        _command.Transaction = transaction;
        foreach (var row in rows)
        {
            Bind(row);
            _command.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    public void Dispose() => _command.Dispose();

    private void Bind(in RequestRecord row)
    {
        var v = _values;
        v[0].Value = row.RequestId;
        v[1].Value = row.Time.ToUnixTimeMilliseconds();
        v[2].Value = row.Tenant;
        v[3].Value = row.KeyId;
        v[4].Value = row.Class;
        v[5].Value = row.Model.Length <= MaxModelLength ? row.Model : row.Model[..MaxModelLength];
        v[6].Value = row.Worker;
        v[7].Value = row.Usage.PromptTokens;
        v[8].Value = row.Usage.CompletionTokens;
        v[9].Value = row.Usage.CachedPromptTokens;
        v[10].Value = row.Usage.ReasoningTokens;
        v[11].Value = row.Usage.Estimated ? 1 : 0;
        v[12].Value = row.QueueWaitMs;
        v[13].Value = row.TtftMs is { } ttft ? ttft : DBNull.Value;
        v[14].Value = row.DurationMs;
        v[15].Value = row.Status;
        v[16].Value = row.Outcome;
        v[17].Value = row.CostNanos;
    }
}
