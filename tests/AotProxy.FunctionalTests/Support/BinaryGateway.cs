using System.Net;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests.Support;

// The executable (the AOT binary in CI) over simulated workers sim-0..sim-N on loopback,
// configured from TestGateway's TOML in a file it watches.
internal sealed class BinaryGateway : IAsyncDisposable
{
    private readonly TempDirectory _directory;

    private BinaryGateway(TempDirectory directory, List<SimulatedWorker> workers, GatewayProcess process, string toml)
    {
        _directory = directory;
        Workers = workers;
        Process = process;
        Toml = toml;
        Data = new HttpClient { BaseAddress = process.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        Admin = new HttpClient { BaseAddress = process.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public List<SimulatedWorker> Workers { get; }

    public GatewayProcess Process { get; }

    // The config file's text at start.
    public string Toml { get; }

    public string ConfigPath => Path.Combine(_directory.Path, "aotproxy.toml");

    public HttpClient Data { get; }

    public HttpClient Admin { get; }

    // discoverModels: the workers' sections name no models; the gateway asks each GET /v1/models
    // (which lists a simulator's LoRA adapters too). models: the workers' sections name these instead.
    public static async Task<BinaryGateway> StartAsync(
        int workers,
        string adminToken = "",
        string extraToml = "",
        Action<SimulatorOptions>? configure = null,
        bool warmup = false,
        string forwardingToml = "",
        string routing = TestGateway.DefaultRouting,
        bool discoverModels = false,
        string[]? models = null,
        string serverToml = "")
    {
        var simulated = new List<SimulatedWorker>();
        for (var i = 0; i < workers; i++)
        {
            var options = new SimulatorOptions { Name = $"sim-{i}", Model = TestGateway.Model };
            configure?.Invoke(options);
            simulated.Add(await SimulatedWorker.StartAsync(options, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance));
        }

        var directory = new TempDirectory();
        var toml = TestGateway.Toml(simulated, extraToml, adminToken: adminToken, routing: routing, serverToml: serverToml, warmup: warmup, forwardingToml: forwardingToml);
        if (discoverModels || models is not null)
        {
            var listed = models is null ? string.Empty : $"models = [{string.Join(", ", models.Select(m => $"\"{m}\""))}]";
            toml = toml.Replace($"models = [\"{TestGateway.Model}\"]", listed, StringComparison.Ordinal);
        }

        var config = Path.Combine(directory.Path, "aotproxy.toml");
        await File.WriteAllTextAsync(config, toml);
        var process = GatewayProcess.Start("serve", "--config", config);
        await process.WaitForReadyAsync();
        return new BinaryGateway(directory, simulated, process, toml);
    }

    // Two workers, sim-0 serving `first` and sim-1 `second`, their models discovered (GET
    // /v1/models): the fleet of the alias and model "auto" tests. Returns once acme sees both.
    public static async Task<BinaryGateway> StartTwoModelsAsync(string first, string second, string extraToml)
    {
        var gateway = await StartAsync(workers: 2, discoverModels: true, configure: o => o.Model = o.Name == "sim-0" ? first : second, extraToml: extraToml);
        try
        {
            await TestGateway.WaitUntilAsync(async () => (await gateway.ModelIdsAsync(TestGateway.Key)).Intersect([first, second]).Count() == 2, $"{first} and {second} are discovered");
            return gateway;
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    // GET /v1/models as the key's tenant sees it.
    public async Task<List<string>> ModelIdsAsync(string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        request.Headers.Authorization = new("Bearer", key);
        using var response = await Data.SendAsync(request);
        using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. json.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!)];
    }

    public async ValueTask DisposeAsync()
    {
        Data.Dispose();
        Admin.Dispose();
        await Process.DisposeAsync();
        foreach (var worker in Workers)
        {
            await worker.DisposeAsync();
        }

        _directory.Dispose();
    }
}
