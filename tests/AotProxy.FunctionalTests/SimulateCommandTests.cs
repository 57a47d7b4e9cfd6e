using System.Net;
using System.Text;
using AotProxy.Cli;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;

namespace AotProxy.FunctionalTests;

// `aotproxy simulate` through the real executable: one simulated vLLM worker, on its own.
public class SimulateCommandTests
{
    [Fact]
    public async Task Simulate_ServesChatCompletionsAndExitsZeroOnSigterm()
    {
        await using var simulator = GatewayProcess.Start("simulate", "--listen", "127.0.0.1:0", "--model", "bench", "--decode-tps", "500");
        var url = await simulator.WaitForSimulatorUrlAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };

        using (var response = await http.PostAsync("v1/chat/completions", Chat(stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains("\"object\":\"chat.completion\"", body, StringComparison.Ordinal);
            Assert.Contains("\"model\":\"bench\"", body, StringComparison.Ordinal);
            Assert.Contains("\"usage\":{", body, StringComparison.Ordinal);
        }

        using (var response = await http.PostAsync("v1/chat/completions", Chat(stream: true)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            var body = await response.Content.ReadAsStringAsync();
            Assert.StartsWith("data: {", body, StringComparison.Ordinal);
            Assert.Contains("\"object\":\"chat.completion.chunk\"", body, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        }

        simulator.SendSigterm();
        Assert.Equal(0, await simulator.WaitForExitAsync(TimeSpan.FromSeconds(15)));
    }

    [Theory]
    [InlineData("--listen", "nowhere")]
    [InlineData("--listen", "127.0.0.1:0", "--decode-tps", "0")]
    [InlineData("--listen", "127.0.0.1:0", "--metrics", "v9")]
    [InlineData("--listen", "127.0.0.1:0", "--decode-rate", "200")]
    [InlineData("--model", "bench")]
    [InlineData("--listen", "127.0.0.1:0", "--speed", "0")]
    [InlineData("--listen", "127.0.0.1:0", "--num-gpu-blocks", "-1")]
    public async Task Simulate_BadFlags_ExitTwoWithAMessageNamingTheFlag(params string[] flags)
    {
        var (exitCode, output) = await GatewayProcess.RunToEndAsync(["simulate", .. flags]);
        Assert.Equal(2, exitCode);
        Assert.Contains("--", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_FleetFlags_SetTheKvBudgetAndSpeed()
    {
        var args = CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--num-gpu-blocks", "1024", "--block-size", "32",
            "--max-num-batched-tokens", "4096", "--speed", "0.5", "--max-num-seqs", "16"]);

        Assert.True(SimulateCommand.TryParse(args, out var options, out _, out var error), error);
        Assert.Equal(1024, options.NumGpuBlocks);
        Assert.Equal(32, options.BlockSize);
        Assert.Equal(4096, options.MaxNumBatchedTokens);
        Assert.Equal(0.5, options.SpeedFactor);
        Assert.Equal(16, options.MaxNumSeqs);
    }

    [Fact]
    public void TryParse_RateLimitFlags_SetRpmAndTpm()
    {
        var args = CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--rpm", "120", "--tpm", "40000"]);

        Assert.True(SimulateCommand.TryParse(args, out var options, out _, out var error), error);
        Assert.Equal(120, options.RequestsPerMinute);
        Assert.Equal(40_000, options.TokensPerMinute);
    }

    [Fact]
    public void TryParse_MaxNumWaiting_BoundsTheQueueAndIsUnboundedWithout()
    {
        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--max-num-waiting", "2"]), out var capped, out _, out var error), error);
        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0"]), out var unbounded, out _, out error), error);

        Assert.Equal(2, capped.MaxNumWaiting);
        Assert.Null(unbounded.MaxNumWaiting);
    }

    [Fact]
    public void TryParse_MaxNumQueuedReqsAndTokens_BoundTheQueue()
    {
        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--max-num-queued-reqs", "0", "--max-num-queued-tokens", "4096"]), out var capped, out _, out var error), error);

        Assert.Equal(0, capped.MaxNumQueuedReqs);
        Assert.Equal(4096, capped.MaxNumQueuedTokens);
        Assert.False(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--max-num-queued-tokens", "-1"]), out _, out _, out error));
        Assert.Contains("--max-num-queued-tokens takes a number", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_OtlpTracesEndpoint_IsTheReceiversTracesUrl_AndRefusesWhatIsNotHttp()
    {
        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--otlp-traces-endpoint", "http://127.0.0.1:4318"]), out var traced, out _, out var error), error);
        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0"]), out var untraced, out _, out error), error);
        Assert.False(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", "--otlp-traces-endpoint", "127.0.0.1:4317"]), out _, out _, out error));

        Assert.Equal(new Uri("http://127.0.0.1:4318/v1/traces"), traced.OtlpTracesEndpoint);
        Assert.Null(untraced.OtlpTracesEndpoint);
        Assert.Contains("--otlp-traces-endpoint", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], SchedulingPolicy.Fcfs)]
    [InlineData(new[] { "--scheduling-policy", "fcfs" }, SchedulingPolicy.Fcfs)]
    [InlineData(new[] { "--scheduling-policy", "priority" }, SchedulingPolicy.Priority)]
    public void TryParse_SchedulingPolicy_IsVllmsFlag(string[] flags, SchedulingPolicy expected)
    {
        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", .. flags]), out var options, out _, out var error), error);
        Assert.Equal(expected, options.SchedulingPolicy);
    }

    [Fact]
    public void TryParse_NoFleetFlags_KeepsTheSimulatorDefaults()
    {
        var defaults = new SimulatorOptions();

        Assert.True(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0"]), out var options, out _, out var error), error);
        Assert.Equal(defaults.NumGpuBlocks, options.NumGpuBlocks);
        Assert.Equal(defaults.BlockSize, options.BlockSize);
        Assert.Equal(defaults.MaxNumBatchedTokens, options.MaxNumBatchedTokens);
        Assert.Equal(defaults.SpeedFactor, options.SpeedFactor);
    }

    [Theory]
    [InlineData("--num-gpu-blocks", "0", "--num-gpu-blocks takes a number from 1 to 1048576")]
    [InlineData("--num-gpu-blocks", "many", "--num-gpu-blocks takes a number from 1 to 1048576")]
    [InlineData("--block-size", "257", "--block-size takes a number from 1 to 256")]
    [InlineData("--max-num-batched-tokens", "8", "--max-num-batched-tokens (8) must be at least --max-num-seqs (64)")]
    [InlineData("--speed", "-0.5", "--speed takes a factor above 0")]
    [InlineData("--speed", "1e3", "--speed takes a factor above 0")]
    [InlineData("--speed", "101", "--speed takes a factor above 0")]
    [InlineData("--scheduling-policy", "Priority", "--scheduling-policy takes fcfs or priority (got \"Priority\")")]
    [InlineData("--max-num-waiting", "-1", "--max-num-waiting takes a number from 0 to 1048576")]
    [InlineData("--rpm", "-1", "--rpm takes a number per minute from 0 (unlimited) to 1000000000")]
    [InlineData("--tpm", "2000000000", "--tpm takes a number per minute from 0 (unlimited) to 1000000000")]
    public void TryParse_BadFleetFlag_NamesTheFlagAndItsRange(string flag, string value, string expected)
    {
        Assert.False(SimulateCommand.TryParse(CliArgs.Parse(["simulate", "--listen", "127.0.0.1:0", flag, value]), out _, out _, out var error));
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Simulate_FleetFlags_ShowInVllmCacheConfigInfo()
    {
        await using var simulator = GatewayProcess.Start("simulate", "--listen", "127.0.0.1:0", "--num-gpu-blocks", "640", "--block-size", "32", "--speed", "0.5");
        var url = await simulator.WaitForSimulatorUrlAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };

        var metrics = await http.GetStringAsync("metrics");

        var info = metrics.Split('\n').Single(l => l.StartsWith("vllm:cache_config_info{", StringComparison.Ordinal));
        Assert.Contains("block_size=\"32\"", info, StringComparison.Ordinal);
        Assert.Contains("num_gpu_blocks=\"640\"", info, StringComparison.Ordinal);
        simulator.SendSigterm();
        Assert.Equal(0, await simulator.WaitForExitAsync(TimeSpan.FromSeconds(15)));
    }

    private static StringContent Chat(bool stream) => new(
        $$"""{"model":"bench","messages":[{"role":"user","content":"Hello!"}],"max_tokens":8,"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8,
        "application/json");
}
