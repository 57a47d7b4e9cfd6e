using System.IO.Pipelines;
using System.Net;
using System.Text;
using AotProxy.Routing;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Routing;

// The reader against the simulator's /metrics, read the way the scraper will: through a PipeReader
// with small reads, so lines arrive cut across segments.
public class VllmMetricsReaderSimulatorTests
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";

    [Theory]
    [InlineData(MetricsFormat.V1)]
    [InlineData(MetricsFormat.V0)]
    public async Task Read_SimulatorUnderLoad_AgreesWithSimulatorStats(MetricsFormat format)
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { MetricsFormat = format, MaxNumSeqs = 2, DecodeTokensPerSecond = 5 },
            new IPEndPoint(IPAddress.Loopback, 0),
            NullLoggerFactory.Instance);
        using var client = new HttpClient { BaseAddress = worker.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        var prompt = string.Concat(Enumerable.Repeat("You are a helpful assistant that answers briefly. ", 20));
        using var cts = new CancellationTokenSource();
        var streams = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => client.SendAsync(
            Chat(prompt + i, stream: true),
            HttpCompletionOption.ResponseHeadersRead,
            cts.Token)));
        Assert.All(streams, response => Assert.Equal(HttpStatusCode.OK, response.StatusCode));

        // The engine moves between the scrape and the read of Stats: poll until both agree on a
        // state with two running, three waiting and a filled KV cache.
        VllmMetrics metrics = default;
        (double, double, double, double, double) expected = default;
        var agreed = await PollAsync(async () =>
        {
            metrics = await ScrapeAsync(client);
            var stats = worker.Stats;
            expected = (stats.Running, stats.Waiting, stats.KvCacheUsage, stats.PrefixCacheQueries, stats.PrefixCacheHits);
            return expected == (metrics.Running, metrics.Waiting, metrics.KvCacheUsage, metrics.PrefixCacheQueries, metrics.PrefixCacheHits)
                && metrics.Running == 2 && metrics.Waiting == 3;
        });

        Assert.True(agreed, $"reader {metrics} vs stats {expected}");
        Assert.Equal(VllmMetricsStatus.Complete, metrics.Status);
        Assert.Equal((0, 0), (metrics.InvalidLines, metrics.RejectedValues));
        Assert.InRange(metrics.KvCacheUsage, double.Epsilon, 1.0);
        Assert.True(metrics.Has(VllmMetricFields.PrefixCacheQueries | VllmMetricFields.PrefixCacheHits));
        Assert.True(metrics.PrefixCacheQueries > 0);

        await cts.CancelAsync();
        foreach (var response in streams)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task Read_SimulatorAfterARepeatedPrompt_ReadsPrefixCacheHits()
    {
        await using var worker = await SimulatedWorker.StartAsync(new SimulatorOptions { SpeedFactor = 50 }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        using var client = new HttpClient { BaseAddress = worker.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        var prompt = string.Concat(Enumerable.Repeat("You are a helpful assistant that answers briefly. ", 40));
        for (var i = 0; i < 2; i++)
        {
            using var response = await client.SendAsync(Chat(prompt, stream: false));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var metrics = await ScrapeAsync(client);

        Assert.True(worker.Stats.PrefixCacheHits > 0);
        Assert.Equal((double)worker.Stats.PrefixCacheHits, metrics.PrefixCacheHits);
        Assert.Equal((double)worker.Stats.PrefixCacheQueries, metrics.PrefixCacheQueries);
        Assert.Equal((0.0, 0.0, 0.0), (metrics.Running, metrics.Waiting, metrics.KvCacheUsage));
        Assert.Equal(VllmMetricsStatus.Complete, metrics.Status);
    }

    [Fact]
    public async Task Read_SimulatorGarbageMetricsFault_IsInvalid()
    {
        await using var worker = await SimulatedWorker.StartAsync(new SimulatorOptions(), new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        using var client = new HttpClient { BaseAddress = worker.BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        worker.Options.Faults.GarbageMetrics = true;

        var garbage = await ScrapeAsync(client);
        worker.Options.Faults.GarbageMetrics = false;
        var healthy = await ScrapeAsync(client);

        Assert.Equal(VllmMetricsStatus.Invalid, garbage.Status);
        Assert.True(garbage.InvalidLines > 0);
        Assert.Equal(VllmMetricsStatus.Complete, healthy.Status);
    }

    private static HttpRequestMessage Chat(string content, bool stream) => new(HttpMethod.Post, "/v1/chat/completions")
    {
        Content = new StringContent(
            $"{{\"model\":\"{Model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"{content}\"}}],\"max_tokens\":1000,\"ignore_eos\":{(stream ? "true" : "false")},\"stream\":{(stream ? "true" : "false")}}}"
                .Replace("\"max_tokens\":1000,\"ignore_eos\":false", "\"max_tokens\":2", StringComparison.Ordinal),
            Encoding.UTF8,
            "application/json"),
    };

    private static async Task<VllmMetrics> ScrapeAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/metrics", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var pipe = PipeReader.Create(await response.Content.ReadAsStreamAsync(), new StreamPipeReaderOptions(bufferSize: 512, minimumReadSize: 128));
        var reader = default(VllmMetricsReader);
        while (true)
        {
            var result = await pipe.ReadAsync();
            var consumed = reader.Feed(result.Buffer, result.IsCompleted);
            pipe.AdvanceTo(result.Buffer.GetPosition(consumed), result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        await pipe.CompleteAsync();
        return reader.Result;
    }

    private static async Task<bool> PollAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }
}
