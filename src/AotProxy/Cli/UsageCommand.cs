using System.Globalization;
using System.Text.Json;
using AotProxy.Admin.Contracts;
using AotProxy.Configuration;
using AotProxy.Ledger;
using AotProxy.Store;
using Microsoft.Data.Sqlite;

namespace AotProxy.Cli;

// `aotproxy usage [--since DAY] [--until DAY] [--by tenant|model|requested_model|day] [--config FILE | --ledger PATH] [--json]`:
// the ledger summed per group, read straight from the SQLite file (the gateway may be running:
// WAL lets a reader in beside the writer), or from the shared ledger when the config sets
// [store] postgres_url (--ledger PATH still reads that file). The same UsageQuery serves GET /api/usage.
internal static class UsageCommand
{
    public static int Run(CliArgs args, TextWriter output, TextWriter errors)
    {
        if (args.FirstUnknownOption("since", "until", "by", "config", "ledger", "json") is { } unknown)
        {
            errors.WriteLine($"aotproxy usage: unknown option --{unknown}");
            return 2;
        }

        if (!UsageQuery.TryParse(args.Option("since"), args.Option("until"), args.Option("by"), out var query, out var error))
        {
            errors.WriteLine($"aotproxy usage: --{error}");
            return 2;
        }

        if (LedgerPath(args, errors, out var store) is not { } path)
        {
            return 2;
        }

        if (store is not null)
        {
            return Print(args, output, query, SharedRows(store, query, errors));
        }

        if (!File.Exists(path))
        {
            errors.WriteLine($"aotproxy usage: no ledger at {path}");
            return 1;
        }

        UsageRow[] rows;
        try
        {
            using var connection = LedgerDatabase.Open(path, create: false);
            rows = query.Run(connection);
        }
        catch (SqliteException ex)
        {
            errors.WriteLine($"aotproxy usage: cannot read {path}: {ex.Message}");
            return 1;
        }

        return Print(args, output, query, rows);
    }

    // [store] postgres_url: every replica's rows; null (said on `errors`) when it cannot be read.
    private static UsageRow[]? SharedRows(PostgresAddress store, UsageQuery query, TextWriter errors)
    {
        var shared = new PostgresLedger(store);
        try
        {
            return shared.RunAsync(query, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (LedgerShipper.IsStoreFailure(ex))
        {
            errors.WriteLine($"aotproxy usage: cannot read the shared ledger {store}: {ex.GetBaseException().Message}");
            return null;
        }
        finally
        {
            shared.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static int Print(CliArgs args, TextWriter output, UsageQuery query, UsageRow[]? rows)
    {
        if (rows is null)
        {
            return 1;
        }

        if (args.Flag("json"))
        {
            output.WriteLine(JsonSerializer.Serialize(new UsageResponse(query.ByName, query.Since, query.Until, rows), AdminJsonContext.Default.UsageResponse));
        }
        else
        {
            WriteTable(output, query.ByName, rows);
        }

        return 0;
    }

    // --ledger PATH, else the ledger.path of --config FILE (default configs/aotproxy.toml), and
    // its [store] postgres_url when set (store: the shared ledger is read instead of the file).
    private static string? LedgerPath(CliArgs args, TextWriter errors, out PostgresAddress? store)
    {
        store = null;
        if (args.Option("ledger") is { } ledger)
        {
            return Path.GetFullPath(ledger);
        }

        var configPath = args.Option("config") ?? ServeCommand.DefaultConfigPath;
        var loaded = ConfigLoader.LoadFile(configPath, 1, TimeProvider.System);
        if (loaded.Snapshot is not { } snapshot)
        {
            CheckConfigCommand.PrintErrors(configPath, loaded.Errors);
            return null;
        }

        if (!snapshot.Ledger.Enabled)
        {
            errors.WriteLine($"aotproxy usage: {configPath} has no ledger (ledger.path = \"\")");
            return null;
        }

        store = snapshot.Store.Postgres;
        return snapshot.Ledger.Path;
    }

    private static void WriteTable(TextWriter output, string by, UsageRow[] rows)
    {
        string[] header = [by, "requests", "prompt", "completion", "cached", "estimated", "cost_usd", "errors", "cache_hits"];
        var lines = new List<string[]> { header };
        foreach (var row in rows)
        {
            lines.Add(Cells(row.Key, row.Requests, row.PromptTokens, row.CompletionTokens, row.CachedTokens, row.EstimatedRequests, row.CostNanos, row.Errors, row.CacheHits));
        }

        if (rows.Length > 1)
        {
            lines.Add(Cells(
                "total",
                rows.Sum(r => r.Requests),
                rows.Sum(r => r.PromptTokens),
                rows.Sum(r => r.CompletionTokens),
                rows.Sum(r => r.CachedTokens),
                rows.Sum(r => r.EstimatedRequests),
                rows.Sum(r => r.CostNanos),
                rows.Sum(r => r.Errors),
                rows.Sum(r => r.CacheHits)));
        }

        // The key left-aligned, the numbers right-aligned.
        TextTable.Write(output, lines, _ => true);

        if (rows.Length == 0)
        {
            output.WriteLine("(no requests in the ledger for this range)");
        }
    }

    private static string[] Cells(string key, long requests, long prompt, long completion, long cached, long estimated, long costNanos, long errors, long cacheHits) =>
    [
        key,
        N(requests),
        N(prompt),
        N(completion),
        N(cached),
        N(estimated),
        (costNanos / 1_000_000_000m).ToString("0.000000", CultureInfo.InvariantCulture),
        N(errors),
        N(cacheHits),
    ];

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
}
