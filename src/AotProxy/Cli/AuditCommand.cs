namespace AotProxy.Cli;

// `aotproxy audit [--since D] [--limit N]`: who changed which tenant or key, when (GET /api/audit),
// newest first.
internal static class AuditCommand
{
    private static readonly string[] Columns = ["at", "actor", "action", "target", "detail"];

    public static async Task<int> RunAsync(CliArgs args, TextWriter output, TextWriter errors)
    {
        var unknown = args.FirstUnknownOption("admin", "token", "json", "since", "limit");
        if (unknown is not null || args.Positional.Count > 0)
        {
            var why = unknown is null ? "" : $" (unknown option --{unknown})";
            await errors.WriteLineAsync($"usage: aotproxy audit [--since 2026-11-01] [--limit N] [--admin URL] [--token T] [--json]{why}").ConfigureAwait(false);
            return 2;
        }

        var query = new List<string>();
        if (args.Option("since") is { } since)
        {
            query.Add("since=" + Uri.EscapeDataString(since));
        }

        if (args.Option("limit") is { } limit)
        {
            query.Add("limit=" + Uri.EscapeDataString(limit));
        }

        var exit = 0;
        var path = "/api/audit" + (query.Count == 0 ? "" : "?" + string.Join('&', query));
        using var audit = await AdminAnswer.CallAsync(args, HttpMethod.Get, path, null, output, errors, c => exit = c).ConfigureAwait(false);
        if (audit is not null)
        {
            var lines = new List<string[]> { Columns };
            lines.AddRange(audit.RootElement.EnumerateArray().Select(row => Columns.Select(c => AdminAnswer.Text(row, c)).ToArray()));
            TextTable.Write(output, lines, _ => false);
            if (lines.Count == 1)
            {
                await output.WriteLineAsync("(no changes recorded)").ConfigureAwait(false);
            }
        }

        return exit;
    }
}
