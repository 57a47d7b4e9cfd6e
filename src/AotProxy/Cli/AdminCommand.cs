using System.Net.Http.Headers;

namespace AotProxy.Cli;

// `aotproxy status | workers | queues | cluster | drain NAME | undrain NAME`: a thin client of the admin API.
internal static class AdminCommand
{
    public static async Task<int> RunAsync(CliArgs args)
    {
        var baseUrl = (args.Option("admin") ?? Environment.GetEnvironmentVariable("AOTPROXY_ADMIN") ?? "http://127.0.0.1:9090").TrimEnd('/');
        var token = args.Option("token") ?? Environment.GetEnvironmentVariable("AOTPROXY_ADMIN_TOKEN");
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

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var request = new HttpRequestMessage(method, baseUrl + path);
        if (!string.IsNullOrEmpty(token))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        try
        {
            using var response = await http.SendAsync(request).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            (response.IsSuccessStatusCode ? Console.Out : Console.Error).WriteLine(body);
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"cannot reach the admin API at {baseUrl}: {ex.Message}");
            return 1;
        }
    }
}
