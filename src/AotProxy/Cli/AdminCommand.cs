namespace AotProxy.Cli;

// `aotproxy status | workers | queues | cluster | drain NAME | undrain NAME`: a thin client of the admin API.
internal static class AdminCommand
{
    public static async Task<int> RunAsync(CliArgs args)
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
            Console.Error.WriteLine($"usage: aotproxy {args.Command} NAME [--admin URL] [--token T]");
            return 2;
        }

        using var client = new AdminClient(args);
        if (await client.SendAsync(method, path, null, Console.Error).ConfigureAwait(false) is not { } answer)
        {
            return 1;
        }

        (answer.Ok ? Console.Out : Console.Error).WriteLine(answer.Body);
        return answer.Ok ? 0 : 1;
    }
}
