using System.Text.Json;

namespace AotProxy.Cli;

// `aotproxy status | workers | queues | cluster | drain NAME | undrain NAME`: a thin client of the
// admin API. status, workers, queues and cluster print tables (AdminTables); --json, and drain and
// undrain, print the API's JSON as it came.
internal static class AdminCommand
{
    public static async Task<int> RunAsync(CliArgs args, TextWriter output, TextWriter errors)
    {
        var (method, path) = args.Command switch
        {
            "status" => (HttpMethod.Get, "/api/status"),
            "workers" => (HttpMethod.Get, "/api/workers"),
            "queues" => (HttpMethod.Get, "/api/queues"),
            "cluster" => (HttpMethod.Get, "/api/cluster"),
            "drain" or "undrain" when args.Positional.Count == 1 => (HttpMethod.Post, $"/api/workers/{Uri.EscapeDataString(args.Positional[0])}/{args.Command}"),
            _ => (HttpMethod.Get, string.Empty),
        };
        if (path.Length == 0)
        {
            await errors.WriteLineAsync($"usage: aotproxy {args.Command} NAME [--admin URL] [--token T]").ConfigureAwait(false);
            return 2;
        }

        if (args.Command is "status" or "workers" or "queues" or "cluster")
        {
            return await TableAsync(args, path, output, errors).ConfigureAwait(false);
        }

        using var client = new AdminClient(args);
        if (await client.SendAsync(method, path, null, errors).ConfigureAwait(false) is not { } answer)
        {
            return 1;
        }

        await (answer.Ok ? output : errors).WriteLineAsync(answer.Body).ConfigureAwait(false);
        return answer.Ok ? 0 : 1;
    }

    private static async Task<int> TableAsync(CliArgs args, string path, TextWriter output, TextWriter errors)
    {
        if (args.FirstUnknownOption("admin", "token", "json") is { } unknown)
        {
            await errors.WriteLineAsync($"aotproxy {args.Command}: unknown option --{unknown}").ConfigureAwait(false);
            return 2;
        }

        var exit = 0;
        using var answer = await AdminAnswer.CallAsync(args, HttpMethod.Get, path, null, output, errors, c => exit = c).ConfigureAwait(false);
        if (answer is null)
        {
            return exit;
        }

        // The cluster's health beside the rest; status still answers when it cannot be read.
        using var cluster = args.Command == "status" ? await ClusterAsync(args).ConfigureAwait(false) : null;
        if (!AdminTables.TryWrite(args.Command, output, answer.RootElement, cluster?.RootElement))
        {
            await errors.WriteLineAsync($"aotproxy {args.Command}: {AdminTables.NotTheApi(AdminClient.BaseUrlOf(args))}").ConfigureAwait(false);
            return 1;
        }

        return exit;
    }

    private static async Task<JsonDocument?> ClusterAsync(CliArgs args)
    {
        using var client = new AdminClient(args);
        return await client.SendAsync(HttpMethod.Get, "/api/cluster", null, TextWriter.Null).ConfigureAwait(false) is { Ok: true } answer
            ? AdminAnswer.TryParse(answer.Body)
            : null;
    }
}
