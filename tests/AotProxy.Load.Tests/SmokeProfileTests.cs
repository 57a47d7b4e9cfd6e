using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Load.Cli;

namespace AotProxy.Load.Tests;

// The runner end to end: perf/profiles/smoke.toml, shortened, against a real `aotproxy demo`
// (the AOT binary when AOTPROXY_BINARY is set, else the JIT build), through the CLI entry point.
public sealed class SmokeProfileTests
{
    [Fact]
    public async Task Smoke_against_the_demo_gateway_passes_and_reports_every_request()
    {
        await using var demo = GatewayProcess.Start("demo", "--workers", "2", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0");
        await demo.WaitForReadyAsync();
        var outDir = Directory.CreateTempSubdirectory("aotproxy-load-").FullName;
        try
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(45));
            var exit = await LoadCli.RunAsync(
                ["run", Path.Combine(Fixtures.RepoRoot, "perf", "profiles", "smoke.toml"), "--target", demo.DataUri!.ToString(), "--key", "sk-demo-key", "--out", outDir, "--duration-scale", "0.5"],
                stdout,
                stderr,
                timeout.Token);

            Assert.True(exit == LoadCli.Passed, $"exit {exit}\n{stderr}\n{stdout}");
            Assert.Contains("# Load report: smoke", stdout.ToString(), StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(outDir, "smoke.md")));

            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(outDir, "smoke.json")));
            var root = json.RootElement;
            Assert.Equal("smoke", root.GetProperty("profile").GetString());
            Assert.True(root.GetProperty("passed").GetBoolean());

            var scenarios = root.GetProperty("scenarios").EnumerateArray().ToArray();
            Assert.Equal(["smoke", "smoke/chat", "smoke/chat-stream"], scenarios.Select(s => s.GetProperty("name").GetString()));
            var whole = scenarios[0];
            var requests = whole.GetProperty("requests").GetInt64();
            Assert.True(requests > 0);
            Assert.Equal(requests, whole.GetProperty("ok").GetInt64());
            Assert.Empty(whole.GetProperty("errors").EnumerateObject());
            Assert.Equal(requests, whole.GetProperty("status_codes").GetProperty("200").GetInt64());
            Assert.Equal(requests, whole.GetProperty("latency_us").GetProperty("count").GetInt64());
            Assert.True(whole.GetProperty("tokens").GetProperty("completion").GetInt64() > 0);
            Assert.Equal(0, whole.GetProperty("error_rate").GetDouble());
            var outputRate = whole.GetProperty("output_tokens_per_s").GetDouble();
            var duration = root.GetProperty("duration_s").GetDouble();
            Assert.Equal(whole.GetProperty("tokens").GetProperty("completion").GetInt64() / duration, outputRate, 0.2);
            Assert.Contains("| output tok/s |", stdout.ToString(), StringComparison.Ordinal);
            Assert.All(whole.GetProperty("thresholds").EnumerateArray(), t => Assert.True(t.GetProperty("passed").GetBoolean()));

            // Streams: TTFT from the first event with text, and gaps between events.
            var stream = scenarios[2];
            Assert.True(stream.GetProperty("ok").GetInt64() > 0);
            Assert.Equal(stream.GetProperty("ok").GetInt64(), stream.GetProperty("ttft_us").GetProperty("count").GetInt64());
            Assert.True(stream.GetProperty("ttft_us").GetProperty("p50").GetInt64() > 0);
            Assert.True(stream.GetProperty("itl_us").GetProperty("count").GetInt64() > 0);
            Assert.True(stream.GetProperty("ttft_us").GetProperty("p50").GetInt64() <= stream.GetProperty("latency_us").GetProperty("p50").GetInt64());
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_bad_profile_is_exit_code_1_with_the_line()
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, "[[load]]\nkind = \"inject\"\nrate = 1\nduration = \"1s\"\nburst = 3\n");
            var stderr = new StringWriter();
            var exit = await LoadCli.RunAsync(["run", file], TextWriter.Null, stderr, CancellationToken.None);
            Assert.Equal(LoadCli.UsageError, exit);
            Assert.Contains("line 5: load[0].burst: unknown key", stderr.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("run")]
    [InlineData("walk x.toml")]
    [InlineData("run x.toml --rate-scale -1")]
    [InlineData("run x.toml --target ftp://x")]
    [InlineData("run x.toml --bogus 1")]
    public async Task Bad_arguments_are_exit_code_1_with_usage(string args)
    {
        var stderr = new StringWriter();
        Assert.Equal(LoadCli.UsageError, await LoadCli.RunAsync(args.Split(' '), TextWriter.Null, stderr, CancellationToken.None));
        Assert.Contains("usage: aotproxy-load run", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_threshold_is_exit_code_2()
    {
        // Nothing listens on port 9 of loopback (discard; not served in test environments):
        // every request is a connect error, so max_error_rate = 0 fails.
        var file = Path.GetTempFileName();
        var outDir = Directory.CreateTempSubdirectory("aotproxy-load-").FullName;
        try
        {
            await File.WriteAllTextAsync(file, """
                [scenario]
                name = "refused"
                target = "http://127.0.0.1:9"

                [[load]]
                kind = "inject"
                rate = 20
                duration = "250ms"

                [thresholds]
                max_error_rate = 0
                """);
            var exit = await LoadCli.RunAsync(["run", file, "--out", outDir], TextWriter.Null, TextWriter.Null, CancellationToken.None);
            Assert.Equal(LoadCli.ThresholdFailed, exit);
            var name = Path.GetFileNameWithoutExtension(file);
            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(outDir, name + ".json")));
            var whole = json.RootElement.GetProperty("scenarios")[0];
            Assert.False(json.RootElement.GetProperty("passed").GetBoolean());
            Assert.Equal(5, whole.GetProperty("errors").GetProperty("connect").GetInt64());
            Assert.Equal(1.0, whole.GetProperty("error_rate").GetDouble());
            Assert.Equal(0, whole.GetProperty("output_tokens_per_s").GetDouble());
        }
        finally
        {
            File.Delete(file);
            Directory.Delete(outDir, recursive: true);
        }
    }
}
