using System.Globalization;

namespace AotProxy.FunctionalTests.Support;

// The executable twice over: `aotproxy serve` in front of `aotproxy simulate` workers, each its
// own process on loopback, configured from TestGateway's TOML (tenant "acme" and the rest).
internal sealed class SimulateGateway : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private readonly List<GatewayProcess> _workers;

    private SimulateGateway(TempDirectory directory, List<GatewayProcess> workers, GatewayProcess process)
    {
        _directory = directory;
        _workers = workers;
        Process = process;
        Data = new HttpClient { BaseAddress = process.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        Admin = new HttpClient { BaseAddress = process.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public GatewayProcess Process { get; }

    public HttpClient Data { get; }

    public HttpClient Admin { get; }

    // simulateFlags: more `aotproxy simulate` flags for every worker (--max-num-seqs 1, ...).
    public static async Task<SimulateGateway> StartAsync(int workers = 1, string extraToml = "", string forwardingToml = "", params string[] simulateFlags)
    {
        var processes = new List<GatewayProcess>();
        var sections = new System.Text.StringBuilder();
        for (var i = 0; i < workers; i++)
        {
            var name = $"sim-{i}";
            var worker = GatewayProcess.Start(["simulate", "--listen", "127.0.0.1:0", "--model", TestGateway.Model, "--name", name, .. simulateFlags]);
            processes.Add(worker);
            var url = await worker.WaitForSimulatorUrlAsync();
            sections.Append(CultureInfo.InvariantCulture, $"""

                [[workers]]
                name = "{name}"
                url = "{url}"
                models = ["{TestGateway.Model}"]

                """);
        }

        var directory = new TempDirectory();
        var config = Path.Combine(directory.Path, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml(sections.ToString(), extraToml, forwardingToml: forwardingToml));
        var process = GatewayProcess.Start("serve", "--config", config);
        await process.WaitForReadyAsync();
        return new SimulateGateway(directory, processes, process);
    }

    // The tenant's row of the ledger's totals (GET /api/usage?by=tenant), once it has `requests` rows.
    public async Task<System.Text.Json.JsonElement> LedgerRowAsync(string tenant, long requests)
    {
        System.Text.Json.JsonElement row = default;
        await TestGateway.WaitUntilAsync(
            async () =>
            {
                using var json = System.Text.Json.JsonDocument.Parse(await Admin.GetStringAsync("/api/usage?by=tenant&since=2000-01-01"));
                var found = json.RootElement.GetProperty("rows").EnumerateArray().Where(r => r.GetProperty("key").GetString() == tenant).ToList();
                row = found.Count == 1 ? found[0].Clone() : default;
                return found.Count == 1 && row.GetProperty("requests").GetInt64() == requests;
            },
            $"{requests} ledger rows of tenant {tenant}");
        return row;
    }

    public async ValueTask DisposeAsync()
    {
        Data.Dispose();
        Admin.Dispose();
        await Process.DisposeAsync();
        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        _directory.Dispose();
    }
}
