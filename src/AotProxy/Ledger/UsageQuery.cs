using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace AotProxy.Ledger;

// A usage report over the ledger: rows of one grouping, arrivals in [Since, Until). The CLI
// (`aotproxy usage`) and the admin API (GET /api/usage) parse the same arguments into it and run it alike.
internal sealed record UsageQuery(UsageGrouping By, DateTimeOffset? Since, DateTimeOffset? Until)
{
    // UsageGrouping's names, in its order.
    public static readonly string[] GroupingNames = ["tenant", "model", "day", "requested_model"];

    public string ByName => GroupingNames[(int)By];

    // since/until: "2026-11-01" (a UTC day; --until includes that day) or an ISO 8601 time
    // ("2026-11-01T12:00:00Z"); null or "" leaves the side open. by: tenant (default) | model | day | requested_model.
    public static bool TryParse(string? since, string? until, string? by, out UsageQuery query, out string error)
    {
        query = new UsageQuery(UsageGrouping.Tenant, null, null);
        var grouping = Array.IndexOf(GroupingNames, by ?? "tenant");
        if (grouping < 0)
        {
            error = $"by: unknown grouping \"{by}\"; use one of {string.Join(", ", GroupingNames)}";
            return false;
        }

        if (!TryParseTime("since", since, endOfDay: false, out var from, out error) || !TryParseTime("until", until, endOfDay: true, out var to, out error))
        {
            return false;
        }

        query = new UsageQuery((UsageGrouping)grouping, from, to);
        error = string.Empty;
        return true;
    }

    // What a row groups by, in either ledger's SQL (this file's and PostgresLedger's): a column,
    // or for days the store's own expression of the UTC day (yyyy-MM-dd) of a row's time.
    public string GroupKey(string utcDay) => By switch
    {
        UsageGrouping.Model => "model",
        UsageGrouping.RequestedModel => "requested_model",
        UsageGrouping.Day => utcDay,
        _ => "tenant",
    };

    // cancellationToken interrupts the statement (sqlite3_interrupt): a scan of a large ledger
    // stops when the client that asked for it is gone.
    [SuppressMessage("Security", "CA2100:Review SQL queries for security vulnerabilities", Justification = "GroupKey returns one of four constant expressions, chosen by the enum.")]
    public UsageRow[] Run(SqliteConnection connection, CancellationToken cancellationToken = default)
    {
        var key = GroupKey("strftime('%Y-%m-%d', time / 1000, 'unixepoch')");
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT {key}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens),
                   SUM(estimated), SUM(cost_nanos), SUM(status >= 400), SUM(cache_hit)
            FROM requests
            WHERE time >= $since AND time < $until
            GROUP BY 1
            ORDER BY 1
            """;
        command.Parameters.AddWithValue("$since", Since?.ToUnixTimeMilliseconds() ?? long.MinValue);
        command.Parameters.AddWithValue("$until", Until?.ToUnixTimeMilliseconds() ?? long.MaxValue);
        cancellationToken.ThrowIfCancellationRequested();
        using var interrupt = cancellationToken.Register(static c => raw.sqlite3_interrupt(((SqliteConnection)c!).Handle), connection);
        var rows = new List<UsageRow>();
        try
        {
            Read(command, rows);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == raw.SQLITE_INTERRUPT)
        {
            throw new OperationCanceledException(cancellationToken);
        }

        return [.. rows];
    }

    private static void Read(SqliteCommand command, List<UsageRow> rows)
    {
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(UsageRow.Read(reader));
        }
    }

    private static bool TryParseTime(string name, string? text, bool endOfDay, out DateTimeOffset? time, out string error)
    {
        time = null;
        error = string.Empty;
        if (string.IsNullOrWhiteSpace(text))
        {
            return true;
        }

        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            time = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddDays(endOfDay ? 1 : 0);
            return true;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
        {
            time = parsed;
            return true;
        }

        error = $"{name}: \"{text}\" is not a date (2026-11-01) or an ISO 8601 time (2026-11-01T12:00:00Z)";
        return false;
    }
}
