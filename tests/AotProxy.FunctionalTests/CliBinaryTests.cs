using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// `aotproxy workers | health | watch` as the binary a person runs (GatewayProcess: the AOT binary
// under AOTPROXY_BINARY), against `aotproxy demo` and its simulated workers gpu-0 and gpu-1.
public class CliBinaryTests(DemoGatewayFixture demo) : IClassFixture<DemoGatewayFixture>
{
    [Fact]
    public async Task Workers_PrintsATableOfTheSimulatedWorkers_AndJsonForScripts()
    {
        var (code, output) = await GatewayProcess.RunToEndAsync("workers", "--admin", demo.AdminUri.ToString());

        Assert.True(code == 0, output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^name\s+health\s+breaker\s+draining\s+in_flight/slots\s+running\s+waiting\s+kv\s+errors\s+requests$", lines[0]);
        Assert.Equal(["gpu-0", "gpu-1"], lines.Skip(1).Select(l => l.Split(' ')[0]).Order());
        Assert.All(lines.Skip(1), l => Assert.Matches(@"^gpu-\d\s+\S+\s+closed\s+(yes|no)\s+\d+/\d+\s", l));

        (code, output) = await GatewayProcess.RunToEndAsync("workers", "--json", "--admin", demo.AdminUri.ToString());
        Assert.True(code == 0, output);
        Assert.StartsWith("[", output, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"gpu-1\"", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_Exits0WhenReady_AndNonZeroWithTheReason_WhenNoWorkerIsRoutable()
    {
        var admin = demo.AdminUri.ToString();
        var (code, output) = await GatewayProcess.RunToEndAsync("health", "--admin", admin);
        Assert.True(code == 0, output);
        Assert.Equal("ready", output.Trim());

        try
        {
            foreach (var worker in new[] { "gpu-0", "gpu-1" })
            {
                (code, output) = await GatewayProcess.RunToEndAsync("drain", worker, "--admin", admin);
                Assert.True(code == 0, output);
            }

            (code, output) = await GatewayProcess.RunToEndAsync("health", "--admin", admin);
            Assert.Equal(1, code);
            Assert.Equal("aotproxy health: not ready: no routable worker", output.Trim());
        }
        finally
        {
            foreach (var worker in new[] { "gpu-0", "gpu-1" })
            {
                await GatewayProcess.RunToEndAsync("undrain", worker, "--admin", admin);
            }
        }

        (code, output) = await GatewayProcess.RunToEndAsync("health", "--admin", "http://127.0.0.1:1");
        Assert.Equal(1, code);
        Assert.StartsWith("cannot reach the admin API at http://127.0.0.1:1", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_WithStdoutRedirected_PrintsTwoPlainSnapshots_AndExits()
    {
        var (code, output) = await GatewayProcess.RunToEndAsync("watch", "--count", "2", "--admin", demo.AdminUri.ToString());

        Assert.True(code == 0, output);
        Assert.DoesNotContain('\e', output);
        var lines = output.Split('\n');
        Assert.Equal(2, lines.Count(l => l.StartsWith("aotproxy watch  ", StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l.StartsWith("gpu-0 ", StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l.StartsWith("gpu-1 ", StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l == "tenants"));
    }

    [Fact]
    public async Task Help_NamesWatchAndHealth_AndTheTablesJsonFlag()
    {
        var (code, output) = await GatewayProcess.RunToEndAsync("--help");

        Assert.True(code == 0, output);
        Assert.Matches(@"(?m)^\s+aotproxy watch \[--count N \| --once\]", output);
        Assert.Matches(@"(?m)^\s+aotproxy health\s", output);
        Assert.Matches(@"(?m)^\s+aotproxy status \| workers \| queues \| cluster \[--json\]", output);
    }
}
