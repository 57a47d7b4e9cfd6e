using AotProxy.Ledger;

namespace AotProxy.FunctionalTests.Support;

// The rows of a gateway's SQLite ledger file, by request id (read beside the running gateway).
internal static class LedgerFile
{
    public static Dictionary<string, LedgerRow> ReadRows(string path)
    {
        using var connection = LedgerDatabase.Open(path, create: false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT request_id, tenant, key_id, model, worker, prompt_tokens, completion_tokens, estimated, queue_wait_ms, ttft_ms, status, outcome, requested_model FROM requests";
        using var reader = command.ExecuteReader();
        var rows = new Dictionary<string, LedgerRow>(StringComparer.Ordinal);
        while (reader.Read())
        {
            rows.Add(reader.GetString(0), new LedgerRow(
                reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetInt64(5), reader.GetInt64(6),
                reader.GetInt64(7) == 1, reader.GetDouble(8), reader.IsDBNull(9) ? null : reader.GetDouble(9), reader.GetInt32(10), reader.GetString(11), reader.GetString(12)));
        }

        return rows;
    }
}
