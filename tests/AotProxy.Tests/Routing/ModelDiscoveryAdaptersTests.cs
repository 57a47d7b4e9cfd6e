using System.Text;
using AotProxy.Admission;
using AotProxy.Gateway;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tests.Configuration;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Routing;

// ModelDiscovery for a worker configured with `models`: which of them are LoRA adapters, asked of
// its GET /v1/models (a real server on loopback, counting) only when its scrape reports LoRA. The
// clock is fake and moves only when a test says so; each look awaits the asks it makes.
public sealed class ModelDiscoveryAdaptersTests : IAsyncDisposable
{
    private const string Base = "Qwen/Qwen2.5-Coder-1.5B-Instruct";

    private readonly FakeTimeProvider _time = new();
    private readonly ListLogger _log = new();
    private readonly HttpClient _http = new();
    private readonly HeapCompaction _compaction;
    private readonly LoopbackTcpServer _server;
    private readonly GatewayState _state;
    private readonly ModelDiscovery _discovery;
    private Func<int, string> _answer = _ => Json(Fixtures.Text("openai/models.json"));

    // The worker serves the base model and lora-1, configured; it also lists lora-2 (the vLLM capture).
    public ModelDiscoveryAdaptersTests()
    {
        _server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, _answer(request.Number), ct);
            return true;
        });
        var capacity = new CapacitySignal(_time);
        var admissions = new AdmissionController(new WaiterPool(_time, 16), new GatewayTelemetry().Admission, _time, new Router(_time, new Random(7), NullLogger.Instance), capacity);
        _compaction = new HeapCompaction(_time, NullLogger.Instance);
        var snapshot = Snapshots.Create([Snapshots.Worker("w", _server.Url("/").ToString(), Base, "lora-1")]);
        _state = new GatewayState(snapshot, new WorkerRegistry(_time, capacity), new TenantLimits(_time), admissions, new AotProxy.Caching.ResponseCache(_time), _compaction, NullLogger.Instance);
        _discovery = new ModelDiscovery(_state, _http, _time, _log);
    }

    private WorkerState Worker => _state.Current.Workers.Workers[0];

    public async ValueTask DisposeAsync()
    {
        await _discovery.DisposeAsync();
        await _server.DisposeAsync();
        await _compaction.DisposeAsync();
        _http.Dispose();
    }

    private static string Json(string body) =>
        $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";

    // A good scrape; lora: its vllm:lora_requests_info (max_lora 2), with these running adapters.
    private void Scrape(bool lora, params string[] running)
    {
        var mask = running.Aggregate(0UL, (m, name) => m | LoraAdapter.BitOf(Worker.Models, name));
        var info = lora ? new LoraAdapters(true, 2, running.Length, 0, mask, 0) : default;
        Worker.OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Load, Lora = info });
    }

    private Task<bool> LookAsync() => _discovery.LearnAdaptersOnceAsync(_state.Current, CancellationToken.None);

    [Fact]
    public async Task LearnAdapters_NotScrapedYet_OrScrapeWithoutLora_NeverAsks()
    {
        Assert.False(await LookAsync());
        Scrape(lora: false);
        Assert.False(await LookAsync());
        _time.Advance(ModelDiscovery.RefreshInterval * 3);

        Assert.False(await LookAsync());
        Assert.Equal(0, _server.Requests);
        Assert.Empty(Worker.DiscoveredAdapters);
    }

    [Fact]
    public async Task LearnAdapters_ScrapeReportsLora_AsksOnce_TheConfiguredAdaptersAreKnown_AndTheirPoolsRebuilt()
    {
        var before = _state.Current;
        Assert.Null(before.Workers.Pools["lora-1"].Adapter);
        Scrape(lora: true);

        Assert.True(await LookAsync());

        Assert.Equal(1, _server.Requests);
        Assert.Equal([new ListedModel("lora-1", Base, "bharati2324/Qwen2.5-1.5B-Instruct-Code-LoRA-r16v2")], Worker.DiscoveredAdapters.ToArray());
        Assert.True(before.Replaced.IsCancellationRequested);
        Assert.Equal(Base, _state.Current.Workers.Pools["lora-1"].Adapter!.Parent);
        Assert.False(_state.Current.Workers.Pools.ContainsKey("lora-2"));

        // Known adapters running, for as long as it likes: no second ask.
        Scrape(lora: true, "lora-1");
        _time.Advance(ModelDiscovery.RefreshInterval * 3);
        Assert.False(await LookAsync());
        Assert.Equal(1, _server.Requests);
    }

    // The worker loaded lora-1 after the first ask: the scrape names it, and the gateway asks
    // again once RefreshInterval has passed since the last ask, not sooner, and then no more.
    [Fact]
    public async Task LearnAdapters_ScrapeNamesAnUnknownAdapter_AsksAgain_AtMostOncePerRefreshInterval()
    {
        _answer = n => Json(n == 1 ? $$"""{"object":"list","data":[{"id":"{{Base}}","object":"model","parent":null}]}""" : Fixtures.Text("openai/models.json"));
        Scrape(lora: true);
        Assert.True(await LookAsync()); // no adapter, but a first listing: the pools are rebuilt to read it (max_model_len)
        Assert.Equal(1, _server.Requests);
        Assert.Empty(Worker.DiscoveredAdapters);

        Scrape(lora: true, "lora-1");
        Assert.False(await LookAsync());
        _time.Advance(ModelDiscovery.RefreshInterval - TimeSpan.FromSeconds(1));
        Assert.False(await LookAsync());
        Assert.Equal(1, _server.Requests);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await LookAsync());
        Assert.Equal(2, _server.Requests);
        Assert.Equal(["lora-1"], Worker.DiscoveredAdapters.Select(a => a.Id));

        _time.Advance(ModelDiscovery.RefreshInterval * 3);
        Assert.False(await LookAsync());
        Assert.Equal(2, _server.Requests);
    }

    // A worker whose model list fails: nothing logged, nothing learned, and not asked again
    // until its scrape names an adapter (and RefreshInterval has passed).
    [Fact]
    public async Task LearnAdapters_AskFails_IsQuiet_AndBounded()
    {
        _answer = _ => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
        Scrape(lora: true);

        Assert.False(await LookAsync());
        _time.Advance(ModelDiscovery.RefreshInterval);
        Assert.False(await LookAsync());

        Assert.Equal(1, _server.Requests);
        Assert.Empty(_log.Entries);
        Assert.Empty(Worker.DiscoveredAdapters);
    }
}
