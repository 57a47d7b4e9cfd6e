using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class MetricsTests
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    [Fact]
    public void PrometheusScrape_RealVllmFixtures_Parse()
    {
        // The strict test parser accepts real vLLM output, so its verdict on ours means something.
        var v1 = PrometheusScrape.Parse(Fixtures.Text("vllm/metrics-v1-0.19.1.txt"));
        var v0 = PrometheusScrape.Parse(Fixtures.Text("vllm/metrics-v0-partial.txt"));

        Assert.Equal(0.0, v1.Value("vllm:num_requests_running"));
        Assert.Equal(0.0, v0.Value("vllm:gpu_cache_usage_perc"));
    }

    [Fact]
    public async Task Metrics_V1_CarriesVllmNamesLabelsAndHelpTexts()
    {
        await using var worker = await TestWorker.StartAsync(o =>
        {
            o.NumGpuBlocks = 7975;
            o.BlockSize = 16;
        });

        var text = await worker.GetStringAsync("/metrics");

        var scrape = PrometheusScrape.Parse(text);
        string[] required =
        [
            "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:num_requests_waiting_by_reason",
            "vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries_created",
            "vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits_created", "vllm:cache_config_info",
            "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total",
        ];
        Assert.All(required, name => Assert.Contains(scrape.Samples, s => s.Name == name));
        Assert.All(scrape.Samples.Where(s => s.Name.StartsWith("vllm:", StringComparison.Ordinal)), s =>
        {
            Assert.Equal("0", s.Labels["engine"]);
            if (s.Name != "vllm:cache_config_info")
            {
                Assert.Equal(Model, s.Labels["model_name"]);
            }
        });
        Assert.Contains($"vllm:num_requests_running{{engine=\"0\",model_name=\"{Model}\"}} 0.0\n", text, StringComparison.Ordinal);
        var config = scrape.Samples.Single(s => s.Name == "vllm:cache_config_info");
        Assert.Equal(("16", "7975", 1.0), (config.Labels["block_size"], config.Labels["num_gpu_blocks"], config.Value));
        Assert.Equal("counter", scrape.Types["vllm:prefix_cache_hits_total"]);
        Assert.Equal("histogram", scrape.Types["vllm:iteration_tokens_total"]);

        // Families vLLM 0.19.1 also has must read the same: same HELP, same TYPE, same label names.
        var fixture = PrometheusScrape.Parse(Fixtures.Text("vllm/metrics-v1-0.19.1.txt"));
        foreach (var (family, type) in scrape.Types.Where(t => fixture.Types.ContainsKey(t.Key)))
        {
            Assert.Equal(fixture.Types[family], type);
            Assert.Equal(fixture.Help[family], scrape.Help[family]);
        }

        foreach (var name in (string[])["vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:prefix_cache_hits_total", "vllm:request_success_total"])
        {
            Assert.Equal(fixture.Samples.First(s => s.Name == name).Labels.Keys.Order(), scrape.Samples.First(s => s.Name == name).Labels.Keys.Order());
        }
    }

    [Fact]
    public async Task Metrics_V0Format_UsesV0NamesWithoutEngineLabel()
    {
        await using var worker = await TestWorker.StartAsync(o => o.MetricsFormat = MetricsFormat.V0);
        await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("warm up", maxTokens: 3, ignoreEos: true));

        var scrape = PrometheusScrape.Parse(await worker.GetStringAsync("/metrics"));

        Assert.Contains(scrape.Samples, s => s.Name == "vllm:gpu_cache_usage_perc");
        Assert.Contains(scrape.Samples, s => s.Name == "vllm:gpu_prefix_cache_hit_rate");
        Assert.Contains(scrape.Samples, s => s.Name == "vllm:gpu_prefix_cache_hits_total");
        Assert.DoesNotContain(scrape.Samples, s => s.Name == "vllm:kv_cache_usage_perc");
        Assert.DoesNotContain(scrape.Samples, s => s.Labels.ContainsKey("engine"));
        Assert.Equal(3.0, scrape.Value("vllm:generation_tokens_total"));
        var fixture = PrometheusScrape.Parse(Fixtures.Text("vllm/metrics-v0-partial.txt"));
        foreach (var (family, type) in scrape.Types.Where(t => fixture.Types.ContainsKey(t.Key)))
        {
            Assert.Equal(fixture.Types[family], type);
            if (fixture.Help.TryGetValue(family, out var help))
            {
                Assert.Equal(help, scrape.Help[family]);
            }
        }

        var fixtureConfig = fixture.Samples.Single(s => s.Name == "vllm:cache_config_info");
        Assert.Equal(fixtureConfig.Labels.Keys.Order(), scrape.Samples.Single(s => s.Name == "vllm:cache_config_info").Labels.Keys.Order());
    }

    [Fact]
    public async Task Metrics_FiveRequestsTwoSlots_ReportsTwoRunningThreeWaiting()
    {
        await using var worker = await TestWorker.StartAsync(o =>
        {
            o.MaxNumSeqs = 2;
            o.SpeedFactor = 1;
            o.DecodeTokensPerSecond = 5;
        });
        using var cts = new CancellationTokenSource();
        var streams = Enumerable.Range(0, 5)
            .Select(i => worker.OpenStreamAsync(TestWorker.ChatPath, TestWorker.Chat($"load {i}", maxTokens: 1000, stream: true, ignoreEos: true), cts.Token))
            .ToArray();
        var responses = await Task.WhenAll(streams);

        PrometheusScrape? scrape = null;
        var settled = await Eventually.TrueAsync(async () =>
        {
            scrape = PrometheusScrape.Parse(await worker.GetStringAsync("/metrics"));
            return scrape.Value("vllm:num_requests_running") == 2 && scrape.Value("vllm:num_requests_waiting") == 3;
        });

        Assert.True(settled, $"running={scrape?.Value("vllm:num_requests_running")} waiting={scrape?.Value("vllm:num_requests_waiting")}");
        Assert.Equal(3, scrape!.Value("vllm:num_requests_waiting_by_reason", ("reason", "capacity")));
        Assert.InRange(scrape.Value("vllm:kv_cache_usage_perc"), double.Epsilon, 1.0);
        Assert.Equal((2, 3), (worker.Stats.Running, worker.Stats.Waiting));

        await cts.CancelAsync();
        foreach (var response in responses)
        {
            response.Dispose();
        }

        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Aborted == 5), $"aborted={worker.Stats.Aborted}");
        Assert.Equal((0, 0, 0), (worker.Stats.Running, worker.Stats.Waiting, worker.Stats.UsedBlocks));
    }

    [Fact]
    public async Task Metrics_AfterRequest_TokenCountersMatchUsage()
    {
        await using var worker = await TestWorker.StartAsync();

        var (_, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("Count the tokens for me, please.", maxTokens: 9, ignoreEos: true));

        using var json = JsonDocument.Parse(body);
        var usage = json.RootElement.GetProperty("usage");
        var scrape = PrometheusScrape.Parse(await worker.GetStringAsync("/metrics"));
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), scrape.Value("vllm:prompt_tokens_total"));
        Assert.Equal(9.0, scrape.Value("vllm:generation_tokens_total"));
        Assert.Equal(1.0, scrape.Value("vllm:request_success_total", ("finished_reason", "length")));
        Assert.Equal(1.0, scrape.Value("vllm:time_to_first_token_seconds_count"));
    }

    [Fact]
    public async Task PrefixCache_RepeatedLongPrompt_RaisesHits()
    {
        await using var worker = await TestWorker.StartAsync();
        var prompt = string.Concat(Enumerable.Repeat("You are a helpful assistant that answers briefly. ", 40));

        await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat(prompt, maxTokens: 2));
        var hitsAfterFirst = worker.Stats.PrefixCacheHits;
        await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat(prompt, maxTokens: 2));

        Assert.Equal(0, hitsAfterFirst);
        var hits = worker.Stats.PrefixCacheHits;
        Assert.InRange(hits, 400, worker.Stats.PromptTokens / 2);
        Assert.Equal(0, hits % 16);
        var scrape = PrometheusScrape.Parse(await worker.GetStringAsync("/metrics"));
        Assert.Equal(hits, scrape.Value("vllm:prefix_cache_hits_total"));
        Assert.Equal(worker.Stats.PromptTokens, scrape.Value("vllm:prefix_cache_queries_total"));
    }

    [Fact]
    public async Task Metrics_GarbageMetricsFault_ServesUnparseableBody()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.GarbageMetrics = true;

        using var response = await worker.Client.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Throws<FormatException>(() => PrometheusScrape.Parse(text));
        worker.Faults.GarbageMetrics = false;
        PrometheusScrape.Parse(await worker.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Metrics_MissingMetricsFault_Returns404()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.MissingMetrics = true;

        using var response = await worker.Client.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
