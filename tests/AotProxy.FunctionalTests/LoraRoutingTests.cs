using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using Xunit.Abstractions;

namespace AotProxy.FunctionalTests;

// Issue 19's LoRA-aware routing and session affinity, through the binary (the AOT one in CI)
// over simulated vLLM workers: 4 workers serving 8 adapters with 2 adapter slots each.
public class LoraRoutingTests(ITestOutputHelper output)
{
    private static readonly string[] Adapters = [.. Enumerable.Range(0, 8).Select(i => $"lora-{i}")];

    // models: the workers' configured models; null: discovered.
    private static Task<BinaryGateway> StartAsync(string strategy, string[]? models = null) => BinaryGateway.StartAsync(
        4,
        routing: $"strategy = \"{strategy}\"\nmetrics_interval = \"100ms\"",
        discoverModels: models is null,
        models: models,
        configure: o =>
        {
            o.LoraModules = [.. Adapters];
            o.MaxLoras = 2;
            o.LoraLoad = TimeSpan.FromMilliseconds(20);
            o.MaxNumSeqs = 8;
            o.SpeedFactor = 10;
        });

    private static string Chat(string model, string content, int maxTokens = 8) =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{content}}"}],"max_tokens":{{maxTokens}}}""";

    // Until the gateway's /v1/models lists every adapter (discovery asks each worker at start).
    private static Task<JsonElement[]> AdaptersListedAsync(BinaryGateway gateway) => AdaptersListedAsync(gateway.Data.BaseAddress!, Adapters.Length);

    // Until the gateway at `data` lists `count` models with a parent.
    private static async Task<JsonElement[]> AdaptersListedAsync(Uri data, int count)
    {
        using var client = new HttpClient { BaseAddress = data };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
            request.Headers.Authorization = new("Bearer", TestGateway.Key);
            using var response = await client.SendAsync(request);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var listed = json.RootElement.GetProperty("data").EnumerateArray().Where(m => m.TryGetProperty("parent", out _)).Select(m => m.Clone()).ToArray();
            if (listed.Length == count)
            {
                return listed;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the gateway lists {listed.Length} adapters");
            await Task.Delay(100);
        }
    }

    // 8 clients, 20 requests each, for adapters drawn from one seeded sequence per client: the
    // same workload for every strategy. Returns the adapter loads it caused, summed over /sim/stats,
    // and the requests' p90 latency (8 tokens each: mostly the time to the first).
    private static async Task<(long Loads, double P90Ms)> RunWorkloadAsync(BinaryGateway gateway)
    {
        await AdaptersListedAsync(gateway);
        var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
        var clients = Enumerable.Range(0, 8).Select(async client =>
        {
            var random = new Random(client);
            for (var i = 0; i < 20; i++)
            {
                var adapter = Adapters[random.Next(Adapters.Length)];
                using var request = TestGateway.Post("v1/chat/completions", Chat(adapter, $"client {client} request {i}"));
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                using var response = await gateway.Data.SendAsync(request);
                latencies.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{adapter}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        });
        await Task.WhenAll(clients);

        long loads = 0;
        foreach (var worker in gateway.Workers)
        {
            using var client = new HttpClient { BaseAddress = worker.BaseUri };
            using var stats = JsonDocument.Parse(await client.GetStringAsync("sim/stats"));
            loads += stats.RootElement.GetProperty("lora_loads").GetInt64();
        }

        var sorted = latencies.Order().ToArray();
        return (loads, sorted[(int)(0.9 * (sorted.Length - 1))]);
    }

    [Fact]
    public async Task Adapters_P2cKv_LoadsAtMostHalfOfWhatLeastQueueCauses()
    {
        (long Loads, double P90Ms) leastQueue, p2cKv;
        await using (var gateway = await StartAsync("least_queue"))
        {
            leastQueue = await RunWorkloadAsync(gateway);
        }

        await using (var gateway = await StartAsync("p2c_kv"))
        {
            var listed = await AdaptersListedAsync(gateway);
            Assert.All(listed, m => Assert.Equal(TestGateway.Model, m.GetProperty("parent").GetString()));
            p2cKv = await RunWorkloadAsync(gateway);

            using var stats = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/routing/stats"));
            Assert.All(stats.RootElement.GetProperty("workers").EnumerateArray(), w => Assert.Equal(2, w.GetProperty("max_lora").GetInt32()));
        }

        var figures = $"adapter loads for 160 requests: p2c_kv {p2cKv.Loads}, least_queue {leastQueue.Loads}; latency p90 {p2cKv.P90Ms:F0} ms against {leastQueue.P90Ms:F0} ms";
        output.WriteLine(figures);
        Assert.True(p2cKv.Loads <= leastQueue.Loads / 2, figures);
    }

    // A worker configured with `models` still tells which of them are adapters (its /v1/models
    // is asked for their parents), so LoRA-aware routing applies to them as to discovered ones.
    [Fact]
    public async Task ConfiguredModels_AdaptersAreKnown_AndPlacedByResidency()
    {
        await using var gateway = await StartAsync("p2c_kv", [TestGateway.Model, .. Adapters]);
        var listed = await AdaptersListedAsync(gateway);
        Assert.All(listed, m => Assert.Equal(TestGateway.Model, m.GetProperty("parent").GetString()));
        var (loads, _) = await RunWorkloadAsync(gateway);

        // 8 adapters fit the fleet's 8 slots: placed by residency, each is loaded about once, not
        // per request as a load-only pick does (LoadsAtMostHalf's least_queue: ~120 of 160).
        output.WriteLine($"adapter loads for 160 requests with configured models: {loads}");
        Assert.True(loads <= 40, $"adapter loads {loads} for 160 requests");
    }

    // A worker configured with `models` whose /metrics has no LoRA info (no --enable-lora, a
    // hosted API, a test's fake) is never asked GET /v1/models: it sees what it saw before.
    [Fact]
    public async Task ConfiguredModels_NoLoraInMetrics_WorkerIsNeverAskedForItsModels()
    {
        using var directory = new TempDirectory();
        await using var worker = await CountingWorker.StartAsync();
        await using var gateway = await StartCountedAsync(directory, worker, [TestGateway.Model, "lora-1"]);

        // Were it asked, the ask would come within one metrics_interval (100 ms) of the first
        // scrape, as it does for the worker of the test below.
        await worker.WaitUntilAsync(w => w.Scrapes >= 3, "3 scrapes");

        Assert.Equal(0, worker.ModelLists);
    }

    // One that reports LoRA is asked once; among its listed adapters, the configured ones are known
    // as adapters (lora-2 is listed too, but not configured). Without a new adapter in its scrapes,
    // it is not asked again.
    [Fact]
    public async Task ConfiguredModels_LoraInMetrics_WorkerIsAskedOnce_AndItsConfiguredAdaptersListed()
    {
        using var directory = new TempDirectory();
        await using var worker = await CountingWorker.StartAsync("""
            # HELP vllm:lora_requests_info Running stats on lora requests.
            # TYPE vllm:lora_requests_info gauge
            vllm:lora_requests_info{max_lora="2",waiting_lora_adapters="",running_lora_adapters=""} 1.7650000000e+09

            """);
        await using var gateway = await StartCountedAsync(directory, worker, [TestGateway.Model, "lora-1"]);

        await worker.WaitUntilAsync(w => w.ModelLists >= 1, "the gateway asked GET /v1/models");
        var scrapes = worker.Scrapes;
        await worker.WaitUntilAsync(w => w.Scrapes >= scrapes + 3, "3 more scrapes");

        Assert.Equal(1, worker.ModelLists);
        var listed = await AdaptersListedAsync(gateway.DataUri!, 1);
        Assert.Equal("lora-1", listed[0].GetProperty("id").GetString());
        Assert.Equal("Qwen/Qwen2.5-Coder-1.5B-Instruct", listed[0].GetProperty("parent").GetString());
    }

    // The binary in front of one counted worker, scraped every 100 ms.
    private static async Task<GatewayProcess> StartCountedAsync(TempDirectory directory, CountingWorker worker, string[] models)
    {
        var config = Path.Combine(directory.Path, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([], routing: "strategy = \"p2c_kv\"\nmetrics_interval = \"100ms\"", extra: worker.Section(models)));
        var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        return gateway;
    }

    [Fact]
    public async Task Session_TenTurns_StayOnOneWorker()
    {
        await using var gateway = await StartAsync("p2c_kv");
        await AdaptersListedAsync(gateway);
        var served = new List<int>();
        var conversation = "You are a helpful assistant.";
        for (var turn = 0; turn < 10; turn++)
        {
            conversation += $" Turn {turn}: tell me more.";
            var before = gateway.Workers.Select(w => w.Stats.RequestsTotal).ToArray();
            using var request = TestGateway.Post("v1/chat/completions", Chat(TestGateway.Model, conversation));
            request.Headers.Add("x-session-id", "conversation-1");
            using var response = await gateway.Data.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            served.Add(Enumerable.Range(0, 4).Single(i => gateway.Workers[i].Stats.RequestsTotal != before[i]));
        }

        Assert.Single(served.Distinct());
        using var stats = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/routing/stats"));
        Assert.Equal(9, stats.RootElement.GetProperty("workers").EnumerateArray().Sum(w => w.GetProperty("session_picks").GetInt64()));
    }
}
