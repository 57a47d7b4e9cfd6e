using System.Net;
using AotProxy.Routing;
using AotProxy.Simulator;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Routing;

// Real sockets on loopback: the simulator for what vLLM does, LoopbackTcpServer for what a broken
// server does. Timeouts are short where a timeout is the expected outcome, long everywhere else.
public class WorkerScrapeTests
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(300);
    private static readonly VllmModelFilter ModelFilter = new([Model]);

    [Theory]
    [InlineData(MetricsFormat.V1)]
    [InlineData(MetricsFormat.V0)]
    public async Task Scrape_Simulator_IsOkWithLoadAndCacheConfig(MetricsFormat format)
    {
        await using var worker = await StartSimulatorAsync(new SimulatorOptions { MetricsFormat = format, NumGpuBlocks = 4000, BlockSize = 32 });
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, new Uri(worker.BaseUri, "/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.Ok, 200), (result.Outcome, result.StatusCode));
        Assert.True(result.HasLoad);
        Assert.Equal(VllmMetricsStatus.Complete, result.Metrics.Status);
        Assert.Equal((4000L, 32), (result.Metrics.NumGpuBlocks, result.Metrics.BlockSize));
        Assert.Equal((0, 0, 0), (result.Metrics.InvalidLines, result.Metrics.RejectedValues, result.Metrics.OtherModelSamples));
        Assert.True(result.BodyBytes > 1000, $"{result.BodyBytes} bytes");
    }

    [Fact]
    public async Task Scrape_SimulatorOfAnotherModel_IsOtherModel()
    {
        await using var worker = await StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, new Uri(worker.BaseUri, "/metrics"), new VllmModelFilter(["Qwen/Qwen2.5-7B"]), Long, CancellationToken.None);

        Assert.Equal(ScrapeOutcome.OtherModel, result.Outcome);
        Assert.False(result.HasLoad);
        Assert.Equal(VllmMetricFields.NumGpuBlocks | VllmMetricFields.BlockSize, result.Metrics.Present);
    }

    // The simulator escapes the name as prometheus_client does; the filter holds it as served.
    [Fact]
    public async Task Scrape_SimulatorServingANameWithQuotesAndBackslashes_MatchesTheUnescapedName()
    {
        const string Odd = "org/model \"v2\" \\ final";
        await using var worker = await StartSimulatorAsync(new SimulatorOptions { Model = Odd });
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, new Uri(worker.BaseUri, "/metrics"), new VllmModelFilter([Odd]), Long, CancellationToken.None);

        Assert.Equal(ScrapeOutcome.Ok, result.Outcome);
        Assert.Equal(0, result.Metrics.OtherModelSamples);
    }

    [Fact]
    public async Task Scrape_SimulatorGarbageMetricsFault_IsInvalidThenOkOnceCleared()
    {
        await using var worker = await StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();
        var url = new Uri(worker.BaseUri, "/metrics");
        worker.Options.Faults.GarbageMetrics = true;

        var garbage = await WorkerScrape.ScrapeAsync(client, url, ModelFilter, Long, CancellationToken.None);
        worker.Options.Faults.GarbageMetrics = false;
        var healthy = await WorkerScrape.ScrapeAsync(client, url, ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.Invalid, 200), (garbage.Outcome, garbage.StatusCode));
        Assert.True(garbage.Metrics.InvalidLines > 0);
        Assert.Equal(ScrapeOutcome.Ok, healthy.Outcome);
    }

    [Fact]
    public async Task Scrape_SimulatorMissingMetricsFault_IsHttpStatus404()
    {
        await using var worker = await StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();
        worker.Options.Faults.MissingMetrics = true;

        var result = await WorkerScrape.ScrapeAsync(client, new Uri(worker.BaseUri, "/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.HttpStatus, 404), (result.Outcome, result.StatusCode));
        Assert.Equal(default, result.Metrics);
    }

    [Fact]
    public async Task Scrape_PathTheServerDoesNotHave_IsHttpStatus404()
    {
        await using var worker = await StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, new Uri(worker.BaseUri, "/prometheus/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.HttpStatus, 404), (result.Outcome, result.StatusCode));
    }

    [Fact]
    public async Task Scrape_SimulatorBodyOverTheLimit_IsTooLarge()
    {
        await using var worker = await StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, new Uri(worker.BaseUri, "/metrics"), ModelFilter, Long, maxBodyBytes: 1024, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.TooLarge, 200), (result.Outcome, result.StatusCode));
        Assert.False(result.HasLoad);
    }

    [Fact]
    public async Task Scrape_ServerThatNeverAnswers_IsTimeout()
    {
        await using var server = new LoopbackTcpServer();
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Short, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.Timeout, 0), (result.Outcome, result.StatusCode));
    }

    // The timeout covers the body: a worker that trickles its metrics cannot hold the scraper.
    [Fact]
    public async Task Scrape_BodyThatTricklesForever_IsTimeout()
    {
        await using var server = new LoopbackTcpServer(async (stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", ct);
            while (true)
            {
                await LoopbackTcpServer.WriteAsync(stream, "1c\r\nvllm:num_requests_running 1\n\r\n", ct);
                await stream.FlushAsync(ct);
                await Task.Delay(50, ct);
            }
        });
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Short, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.Timeout, 200), (result.Outcome, result.StatusCode));
        Assert.False(result.HasLoad);
    }

    [Fact]
    public async Task Scrape_ClosedPort_IsConnectFailed()
    {
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, LoopbackTcpServer.ClosedPortUrl("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.ConnectFailed, 0), (result.Outcome, result.StatusCode));
    }

    [Fact]
    public async Task Scrape_ConnectionClosedWithoutAnAnswer_IsResponseFailed()
    {
        await using var server = new LoopbackTcpServer((_, _) => Task.CompletedTask);
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.ResponseFailed, 0), (result.Outcome, result.StatusCode));
    }

    [Fact]
    public async Task Scrape_AnswerThatIsNotHttp_IsResponseFailed()
    {
        await using var server = new LoopbackTcpServer((stream, ct) => LoopbackTcpServer.WriteAsync(stream, "SSH-2.0-OpenSSH_9.2\r\n\r\n", ct));
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal(ScrapeOutcome.ResponseFailed, result.Outcome);
    }

    [Fact]
    public async Task Scrape_BodyCutShortOfItsContentLength_IsResponseFailed()
    {
        await using var server = new LoopbackTcpServer((stream, ct) => LoopbackTcpServer.WriteAsync(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nvllm:num_requests_running 1\nvllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0.5\n",
            ct));
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.ResponseFailed, 200), (result.Outcome, result.StatusCode));
        Assert.False(result.HasLoad); // what arrived is complete-looking, but the body is not
    }

    [Fact]
    public async Task Scrape_EndlessChunkedBody_StopsAtTheDefaultLimitAsTooLarge()
    {
        var chunk = "2000\r\n" + new string('#', 8191) + "\n\r\n"; // 8 KiB of comment lines
        await using var server = new LoopbackTcpServer(async (stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ct);
            while (true)
            {
                await LoopbackTcpServer.WriteAsync(stream, chunk, ct);
            }
        });
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.TooLarge, 200), (result.Outcome, result.StatusCode));
        Assert.InRange(result.BodyBytes, WorkerScrape.MaxBodyBytes + 1, WorkerScrape.MaxBodyBytes + (64 * 1024));
    }

    [Fact]
    public async Task Scrape_ContentLengthOverTheLimit_IsTooLargeBeforeTheBodyIsRead()
    {
        await using var server = new LoopbackTcpServer((stream, ct) =>
            LoopbackTcpServer.WriteAsync(stream, "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\nvllm:num_requests_running 1\n", ct));
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal((ScrapeOutcome.TooLarge, 200, 0L), (result.Outcome, result.StatusCode, result.BodyBytes));
    }

    // The real capture, written a few bytes at a time with a flush after each, so that lines
    // reach the PipeReader cut at every kind of place: the same as reading the bytes whole.
    [Fact]
    public async Task Scrape_FixtureWrittenInSmallPieces_ReadsLikeTheWholeBody()
    {
        var body = Fixtures.Bytes("vllm/metrics-v1-0.19.1.txt");
        await using var server = new LoopbackTcpServer(async (stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {body.Length}\r\n\r\n", ct);
            for (var offset = 0; offset < body.Length; offset += 997)
            {
                await stream.WriteAsync(body.AsMemory(offset, Math.Min(997, body.Length - offset)), ct);
                await stream.FlushAsync(ct);
            }
        });
        using var client = new HttpClient();

        var result = await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, CancellationToken.None);

        Assert.Equal(ScrapeOutcome.Ok, result.Outcome);
        Assert.Equal(VllmMetricsReader.Read(body, ModelFilter), result.Metrics);
        Assert.Equal(body.Length, result.BodyBytes);
    }

    [Fact]
    public async Task Scrape_CallerCancels_Throws()
    {
        await using var server = new LoopbackTcpServer();
        using var client = new HttpClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await WorkerScrape.ScrapeAsync(client, server.Url("/metrics"), ModelFilter, Long, cts.Token));
    }

    [Fact]
    public async Task Scrape_CancelledBeforeItStarts_Throws()
    {
        using var client = new HttpClient();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await WorkerScrape.ScrapeAsync(client, LoopbackTcpServer.ClosedPortUrl("/metrics"), ModelFilter, Long, new CancellationToken(canceled: true)));
    }

    [Fact]
    public void DefaultResult_HasNoLoad()
    {
        Assert.Equal(ScrapeOutcome.None, default(ScrapeResult).Outcome);
        Assert.False(default(ScrapeResult).HasLoad);
    }

    internal static Task<SimulatedWorker> StartSimulatorAsync(SimulatorOptions options) =>
        SimulatedWorker.StartAsync(options, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
}
