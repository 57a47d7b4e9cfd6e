using System.Net;
using System.Net.Http.Headers;
using System.Text;
using AotProxy.Cli;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Identity;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging;

namespace AotProxy.FunctionalTests.Support;

// A real gateway (raw Kestrel on loopback, port 0) in front of real simulated vLLM workers,
// configured from a real TOML file that tests may rewrite to exercise hot reload.
internal sealed class TestGateway : IAsyncDisposable
{
    public const string Model = "meta-llama/Llama-3.1-8B-Instruct";
    public const string Key = "sk-test-acme";
    public const string LimitedKey = "sk-test-limited";

    private readonly ILoggerFactory _loggerFactory;
    private readonly ConfigWatcher? _watcher;

    private TestGateway(string directory, string configPath, List<SimulatedWorker> workers, ConfigStore store, GatewayHost host, ILoggerFactory loggerFactory, ConfigWatcher? watcher)
    {
        Directory = directory;
        ConfigPath = configPath;
        Workers = workers;
        Store = store;
        Host = host;
        _loggerFactory = loggerFactory;
        _watcher = watcher;
        Client = new HttpClient { BaseAddress = host.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        Admin = new HttpClient { BaseAddress = host.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Directory { get; }

    public string ConfigPath { get; }

    public List<SimulatedWorker> Workers { get; }

    public ConfigStore Store { get; }

    public GatewayHost Host { get; }

    public HttpClient Client { get; }

    public HttpClient Admin { get; }

    public static readonly DateTimeOffset FrozenNow = new(2026, 11, 22, 12, 0, 0, TimeSpan.Zero);

    // serverToml: more [server] keys, one per line. time: the gateway's clock (the workers keep theirs).
    public static async Task<TestGateway> StartAsync(int workers = 2, Action<SimulatorOptions>? configure = null, bool watch = false, string extraToml = "", string activityTimeout = "10s", bool h2c = false, string adminToken = "", string routing = DefaultRouting, string serverToml = "", TimeProvider? time = null, bool warmup = false, string forwardingToml = "")
    {
        time ??= TimeProvider.System;
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddSimpleConsole());
        var simulated = new List<SimulatedWorker>();
        for (var i = 0; i < workers; i++)
        {
            var options = new SimulatorOptions { Name = $"sim-{i}", Model = Model, TimeProvider = new FixedTimeProvider(FrozenNow) };
            configure?.Invoke(options);
            simulated.Add(await SimulatedWorker.StartAsync(options, new IPEndPoint(IPAddress.Loopback, 0), loggerFactory));
        }

        var directory = Path.Combine(Path.GetTempPath(), "aotproxy-test-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        var configPath = Path.Combine(directory, "aotproxy.toml");
        await File.WriteAllTextAsync(configPath, Toml(simulated, extraToml, activityTimeout, h2c, adminToken, routing, serverToml, warmup, forwardingToml));

        var loaded = ConfigLoader.LoadFile(configPath, 1, time);
        Assert.True(loaded.Snapshot is not null, string.Join("\n", loaded.Errors));
        var store = new ConfigStore(loaded.Snapshot, configPath, time, loggerFactory.CreateLogger("AotProxy.Configuration"));
        var host = await GatewayHost.StartAsync(store, loggerFactory, time);
        var watcher = watch ? new ConfigWatcher(store, loggerFactory.CreateLogger("test"), TimeSpan.FromMilliseconds(100)) : null;
        return new TestGateway(directory, configPath, simulated, store, host, loggerFactory, watcher);
    }

    // The body of the [routing] table unless a test gives its own: round robin makes the spread
    // over workers predictable. The other routing tables ([health], [circuit_breaker], [retries])
    // are not written here, so a test sets them through `extra`.
    public const string DefaultRouting = "strategy = \"round_robin\"";

    // AOTPROXY_TEST_TRANSPORT=sockets (or epoll) runs every gateway these helpers configure (in
    // process and the AOT binary) on that server.transport; unset, the default (epoll on Linux) runs.
    public static string TransportToml { get; } =
        Environment.GetEnvironmentVariable("AOTPROXY_TEST_TRANSPORT") is { Length: > 0 } transport ? $"transport = \"{transport}\"" : "";

    // The config every test starts from: the given workers, tenant "acme" (all models) and
    // tenant "limited" (only a model nobody serves). Port 0: the OS picks free ports. warmup:
    // [routing] warmup, off unless a test is about it: the tests count exactly which requests
    // reach each worker, and start workers with faults (500s, hangs) that a warm-up would keep
    // out of the fleet (WarmupTests turn it on). forwardingToml: more [forwarding] keys.
    public static string Toml(IEnumerable<SimulatedWorker> workers, string extra = "", string activityTimeout = "10s", bool h2c = false, string adminToken = "", string routing = DefaultRouting, string serverToml = "", bool warmup = false, string forwardingToml = "") =>
        Toml(string.Concat(workers.Select(DemoCommand.WorkerSection)), extra, activityTimeout, h2c, adminToken, routing, serverToml, warmup, forwardingToml);

    // workerSections: the [[workers]] sections, for workers that are not in-process (`aotproxy simulate`).
    public static string Toml(string workerSections, string extra = "", string activityTimeout = "10s", bool h2c = false, string adminToken = "", string routing = DefaultRouting, string serverToml = "", bool warmup = false, string forwardingToml = "")
    {
        var toml = new StringBuilder($"""
            [server]
            listen = "127.0.0.1:0"
            admin_listen = "127.0.0.1:0"
            h2c_listen = "{(h2c ? "127.0.0.1:0" : "")}"
            admin_token_sha256 = "{(adminToken.Length == 0 ? "" : ApiKeyIndex.HashKey(adminToken))}"
            max_request_bytes = 65536
            shutdown_grace = "2s"
            {TransportToml}
            {serverToml}

            [routing]
            {routing}
            warmup = {(warmup ? "true" : "false")}

            [forwarding]
            connect_timeout = "2s"
            activity_timeout = "{activityTimeout}"
            {forwardingToml}

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(Key)}"]

            [[tenants]]
            name = "limited"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(LimitedKey)}"]
            models = ["some-other-model"]

            """);
        return toml.Append(workerSections).Append(extra).ToString();
    }

    public static HttpRequestMessage Post(string path, string json, string? key = Key, string? requestId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        if (requestId is not null)
        {
            request.Headers.Add("x-request-id", requestId);
        }

        return request;
    }

    public static string Chat(bool stream, int maxTokens = 16, string content = "Hello there", string? streamOptions = null) =>
        $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"{{content}}"}],"max_tokens":{{maxTokens}},"stream":{{(stream ? "true" : "false")}}{{(streamOptions is null ? "" : ",\"stream_options\":" + streamOptions)}}}""";

    public async Task<string> MetricsAsync() => await Admin.GetStringAsync("/metrics");

    public Task<string> MetricsAfterAsync(int requests) => Fleet.MetricsAfterAsync(Admin, requests);

    // Polls until the condition holds or 10 s pass; the bound keeps a broken test from hanging.
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting until " + what);
            await Task.Delay(25);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Admin.Dispose();
        _watcher?.Dispose();
        await Host.DisposeAsync();
        foreach (var worker in Workers)
        {
            await worker.DisposeAsync();
        }

        _loggerFactory.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
