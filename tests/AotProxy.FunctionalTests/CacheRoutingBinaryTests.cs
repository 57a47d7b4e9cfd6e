using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 19 through the real binary (the AOT one in CI): p2c_kv's cache model takes each worker's
// capacity from its /metrics (num_gpu_blocks x block_size), measures its prefill rate from the
// streams' first bytes, and keeps requests that share a long prefix on the worker that holds it;
// a worker that restarted is believed to hold nothing.
public class CacheRoutingBinaryTests
{
    private const int Blocks = 256;
    private const int BlockSize = 16;

    [Fact]
    public async Task SharedPrefix_StaysOnOneWorker_AndRoutingStatsShowTheCacheModel()
    {
        await using var gateway = await BinaryGateway.StartAsync(
            workers: 2,
            configure: o =>
            {
                o.NumGpuBlocks = Blocks;
                o.BlockSize = BlockSize;
            },
            routing: """
                strategy = "p2c_kv"
                metrics_interval = "100ms"
                """);

        // The first scrapes give each worker's capacity: 256 x 16 = 4,096 tokens, not the 131,072 default.
        await TestGateway.WaitUntilAsync(async () => (await WorkersAsync(gateway)).All(w => w.GetProperty("cache_capacity_tokens").GetInt64() == Blocks * BlockSize), "both workers were scraped");

        // A 4,000-character (~1,000-token, 15 whole chunks) system prompt shared by every request,
        // each with its own question.
        var system = string.Concat(Enumerable.Range(0, 200).Select(i => $"Rule {i:D3}: be brief. "));
        for (var i = 0; i < 12; i++)
        {
            var body = $$"""{"model":"{{TestGateway.Model}}","stream":true,"max_tokens":4,"messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"Question number {{i}}?"}]}""";
            using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", body));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var served = gateway.Workers.Select(w => w.Stats.RequestsTotal).ToArray();
        Assert.Contains(12, served);
        Assert.Contains(0, served);
        var warm = $"sim-{Array.IndexOf(served, 12L)}";

        var stats = Named(await WorkersAsync(gateway), warm);
        Assert.True(stats.GetProperty("prefill_rate_measured").GetBoolean(), stats.ToString());
        Assert.InRange(stats.GetProperty("prefill_tokens_per_second").GetDouble(), 1_000, 1_000_000);
        Assert.InRange(stats.GetProperty("cache_tokens").GetInt64(), 15 * 64, Blocks * BlockSize);
        // The simulator hit about what the model predicted (its blocks cut the rendered text, not the
        // JSON, and a hit may be scraped an interval after its send): the correction stays near 1.
        Assert.InRange(stats.GetProperty("cache_correction").GetDouble(), 0.6, 1.0);
        Assert.Equal(0, stats.GetProperty("prefill_backlog_tokens").GetInt64());
        Assert.Equal(0, stats.GetProperty("decoding").GetInt32());
        Assert.True(stats.GetProperty("sticky_threshold_tokens").GetInt64() > 0, stats.ToString());
        Assert.True(gateway.Workers[Array.IndexOf(served, 12L)].Stats.PrefixCacheHits > 0, "the simulator never hit its prefix cache");
    }

    [Fact]
    public async Task AWorkerThatRestartsOnTheSamePort_IsBelievedToHoldNothing_AfterTheNextScrape()
    {
        string[] flags = ["--model", TestGateway.Model, "--num-gpu-blocks", $"{Blocks}", "--block-size", $"{BlockSize}"];
        await using var first = GatewayProcess.Start(["simulate", "--listen", "127.0.0.1:0", .. flags]);
        var url = await first.WaitForSimulatorUrlAsync();
        using var directory = new TempDirectory();
        await using var gateway = await GatewayProcess.ServeAsync(directory.Path, TestGateway.Toml([], routing: """
            strategy = "p2c_kv"
            metrics_interval = "100ms"
            """, extra: $"""

            [[workers]]
            name = "sim"
            url = "{url}"
            models = ["{TestGateway.Model}"]
            """));
        using var data = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
        await TestGateway.WaitUntilAsync(async () => (await SimAsync(admin)).GetProperty("cache_capacity_tokens").GetInt64() == Blocks * BlockSize, "sim was scraped");

        var system = string.Concat(Enumerable.Range(0, 200).Select(i => $"Rule {i:D3}: be brief. "));
        for (var i = 0; i < 3; i++)
        {
            var body = $$"""{"model":"{{TestGateway.Model}}","max_tokens":4,"messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"Question number {{i}}?"}]}""";
            using var response = await data.SendAsync(TestGateway.Post("v1/chat/completions", body));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A scrape after the requests saw the worker's prefix-cache counters above 0 (a hit rate needs queries).
        await TestGateway.WaitUntilAsync(async () => await ScrapedHitRateAsync(admin) is not null, "a scrape saw sim's prefix-cache queries");
        Assert.InRange((await SimAsync(admin)).GetProperty("cache_tokens").GetInt64(), 15 * 64, Blocks * BlockSize);

        // The same worker, restarted on its port: its counters start again at 0, and so does its cache.
        var port = new Uri(url).Port;
        first.SendSigterm();
        Assert.Equal(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        await using var second = GatewayProcess.Start(["simulate", "--listen", $"127.0.0.1:{port}", .. flags]);
        Assert.Equal(url, await second.WaitForSimulatorUrlAsync());

        await TestGateway.WaitUntilAsync(async () => (await SimAsync(admin)).GetProperty("cache_tokens").GetInt64() == 0, "the model forgets what sim held");
        var stats = await SimAsync(admin);
        Assert.Equal(1.0, stats.GetProperty("cache_correction").GetDouble());
        Assert.Equal(Blocks * BlockSize, stats.GetProperty("cache_capacity_tokens").GetInt64());
    }

    private static async Task<JsonElement> SimAsync(HttpClient admin)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/routing/stats"));
        return Named([.. json.RootElement.GetProperty("workers").EnumerateArray().Select(e => e.Clone())], "sim");
    }

    private static async Task<double?> ScrapedHitRateAsync(HttpClient admin)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/workers"));
        var rate = Named([.. json.RootElement.EnumerateArray()], "sim").GetProperty("scrape").GetProperty("prefix_cache_hit_rate");
        return rate.ValueKind == JsonValueKind.Number ? rate.GetDouble() : null;
    }

    private static async Task<JsonElement[]> WorkersAsync(BinaryGateway gateway)
    {
        using var json = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/routing/stats"));
        return [.. json.RootElement.GetProperty("workers").EnumerateArray().Select(e => e.Clone())];
    }

    private static JsonElement Named(JsonElement[] workers, string name) => workers.Single(w => w.GetProperty("name").GetString() == name);
}
