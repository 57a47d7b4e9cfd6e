using System.Globalization;
using System.Text.Json;
using AotProxy.Cli;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// The CLI's tables (`aotproxy status | workers | queues`, `health`, `watch`) rendered from what a
// running gateway's admin API answers, so that a renamed or reshaped field shows here.
public class AdminTablesTests
{
    [Fact]
    public async Task Workers_OneLinePerWorker_WithTheApisHealthBreakerDrainingSlotsAndScrape()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        using (var drained = await gateway.Admin.PostAsync("/api/workers/sim-1/drain", null))
        {
            drained.EnsureSuccessStatusCode();
        }

        await TestGateway.WaitUntilAsync(async () => (await gateway.Admin.GetStringAsync("/api/workers")).Split("\"fresh\": true").Length == 3, "both workers scraped");
        var body = await gateway.Admin.GetStringAsync("/api/workers");
        using var json = JsonDocument.Parse(body);

        var lines = Lines(writer => Assert.True(AdminTables.TryWrite("workers", writer, json.RootElement)));

        Assert.Equal(["name", "health", "breaker", "draining", "in_flight/slots", "running", "waiting", "kv", "errors", "requests"], lines[0]);
        Assert.Equal(3, lines.Count);
        foreach (var worker in json.RootElement.EnumerateArray())
        {
            var name = worker.GetProperty("name").GetString()!;
            var scrape = worker.GetProperty("scrape");
            Assert.Equal(
                [
                    name,
                    worker.GetProperty("health").GetString()!,
                    worker.GetProperty("breaker").GetString()!,
                    worker.GetProperty("draining").GetBoolean() ? "yes" : "no",
                    $"{worker.GetProperty("in_flight").GetInt32()}/{worker.GetProperty("slots").GetInt32()}",
                    scrape.GetProperty("running").GetDouble().ToString("0", CultureInfo.InvariantCulture),
                    scrape.GetProperty("waiting").GetDouble().ToString("0", CultureInfo.InvariantCulture),
                    (scrape.GetProperty("kv_cache_usage").GetDouble() * 100).ToString("0", CultureInfo.InvariantCulture) + "%",
                    (worker.GetProperty("error_rate").GetDouble() * 100).ToString("0", CultureInfo.InvariantCulture) + "%",
                    worker.GetProperty("requests").GetInt64().ToString(CultureInfo.InvariantCulture),
                ],
                lines.Single(l => l[0] == name));
        }

        Assert.Equal("yes", lines.Single(l => l[0] == "sim-1")[3]);
        Assert.Equal("no", lines.Single(l => l[0] == "sim-0")[3]);
    }

    [Fact]
    public async Task Queues_OneLinePerModelPool_AndJsonIsTheApisBodyByteForByte()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        using (await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false))))
        {
        }

        // The answer reaches the client before its slot is released, and the release frees the slot
        // before it settles the tenant's and class's in_flight and virtual tokens
        // (ModelAdmission.Release): wait until the request is counted, after all of it, so the two
        // reads of /api/queues below see the same state.
        await gateway.MetricsAfterAsync(1);
        var body = await gateway.Admin.GetStringAsync("/api/queues");
        using var json = JsonDocument.Parse(body);
        Assert.All(json.RootElement.GetProperty("models").EnumerateArray(), m => Assert.Equal(0, m.GetProperty("in_use").GetInt32()));
        var model = json.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("model").GetString() == TestGateway.Model);

        var output = Output(writer => Assert.True(AdminTables.TryWrite("queues", writer, json.RootElement)));
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(["model", "slots_in_use", "waiting", "waiting_by_class", "oldest_wait", "grants/s"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(
            [TestGateway.Model, $"{model.GetProperty("in_use").GetInt32()}/{model.GetProperty("capacity").GetInt32()}", model.GetProperty("waiting").GetInt32().ToString(CultureInfo.InvariantCulture)],
            lines.Single(l => l.StartsWith(TestGateway.Model + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[..3]);
        Assert.Equal($"policy: {json.RootElement.GetProperty("policy").GetString()}", lines[^1]);

        // --json: what the API answered, as `aotproxy queues` printed it before the tables.
        var (code, printed, errors) = await RunAsync(AdminCommand.RunAsync, "queues", "--json", "--admin", gateway.Host.AdminUri.ToString());
        Assert.True(code == 0, errors);
        Assert.Equal(body + "\n", printed);
    }

    [Fact]
    public async Task Status_SaysTheRevisionTheLastReloadTheWorkersInFlightAndTheCluster()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        var admin = gateway.Host.AdminUri.ToString();

        var (code, output, errors) = await RunAsync(AdminCommand.RunAsync, "status", "--admin", admin);

        Assert.True(code == 0, errors);
        using var status = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/status"));
        var config = status.RootElement.GetProperty("config");
        var totals = status.RootElement.GetProperty("totals");
        var fields = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(l => l[..l.IndexOf("  ", StringComparison.Ordinal)], l => l[l.IndexOf("  ", StringComparison.Ordinal)..].Trim());
        Assert.StartsWith($"revision {config.GetProperty("revision").GetInt64()} from {config.GetProperty("source").GetString()}", fields["config"], StringComparison.Ordinal);
        Assert.StartsWith("ok at ", fields["last reload"], StringComparison.Ordinal);
        Assert.Equal($"{totals.GetProperty("routable_workers").GetInt32()} routable of {totals.GetProperty("workers").GetInt32()}", fields["workers"]);
        Assert.Equal("0", fields["in flight"]);
        Assert.Equal("alone (no [cluster])", fields["cluster"]);

        // A reload that fails is said with its error.
        await File.WriteAllTextAsync(gateway.ConfigPath, "[server]\nlisten = 7\n");
        using (var reload = await gateway.Admin.PostAsync("/api/config/reload", null))
        {
            Assert.False(reload.IsSuccessStatusCode);
        }

        (code, output, errors) = await RunAsync(AdminCommand.RunAsync, "status", "--admin", admin);
        Assert.True(code == 0, errors);
        using var failed = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/status"));
        var error = failed.RootElement.GetProperty("config").GetProperty("last_reload").GetProperty("errors")[0].GetString()!;
        Assert.Matches(@"(?m)^last reload\s+FAILED at .*: ", output);
        Assert.Contains(error, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cluster_WithoutClusterConfig_SaysAloneInOneLine_AndJsonIsTheApisBody()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        var admin = gateway.Host.AdminUri.ToString();

        var (code, output, errors) = await RunAsync(AdminCommand.RunAsync, "cluster", "--admin", admin);
        Assert.True(code == 0, errors);
        Assert.Equal("cluster  alone (no [cluster])\n", output);

        (code, output, errors) = await RunAsync(AdminCommand.RunAsync, "cluster", "--json", "--admin", admin);
        Assert.True(code == 0, errors);
        using var json = JsonDocument.Parse(output);
        Assert.Equal("alone", json.RootElement.GetProperty("mode").GetString());
    }

    [Fact]
    public async Task Health_Exits0WhenReady_1WithTheReasonWhenNot_Or1WhenTheApiCannotBeReached()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        var admin = gateway.Host.AdminUri.ToString();

        var (code, output, errors) = await RunAsync(HealthCommand.RunAsync, "health", "--admin", admin);
        Assert.True(code == 0, errors);
        Assert.Equal("ready\n", output);

        using (var drained = await gateway.Admin.PostAsync("/api/workers/sim-0/drain", null))
        {
            drained.EnsureSuccessStatusCode();
        }

        (code, output, errors) = await RunAsync(HealthCommand.RunAsync, "health", "--admin", admin);
        Assert.Equal(1, code);
        Assert.Equal("aotproxy health: not ready: no routable worker\n", errors);
        Assert.Empty(output);

        (code, _, errors) = await RunAsync(HealthCommand.RunAsync, "health", "--admin", "http://127.0.0.1:1");
        Assert.Equal(1, code);
        Assert.StartsWith("cannot reach the admin API at http://127.0.0.1:1", errors, StringComparison.Ordinal);

        (code, _, errors) = await RunAsync(HealthCommand.RunAsync, "health", "--admin", admin, "--verbose", "1");
        Assert.Equal(2, code);
        Assert.Contains("--verbose", errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_WithoutATerminal_PrintsCountPlainSnapshots_OfWorkersQueuesAndTenants()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);

        var (code, output, errors) = await RunAsync((a, o, e) => WatchCommand.RunAsync(a, o, e, terminal: false), "watch", "--count", "2", "--admin", gateway.Host.AdminUri.ToString());

        Assert.True(code == 0, errors);
        Assert.DoesNotContain('\e', output);
        var lines = output.Split('\n');
        Assert.Equal(2, lines.Count(l => l.StartsWith("aotproxy watch  " + gateway.Host.AdminUri.ToString().TrimEnd('/'), StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l == "workers"));
        Assert.Equal(2, lines.Count(l => l == "queues"));
        Assert.Equal(2, lines.Count(l => l == "tenants"));
        Assert.Equal(2, lines.Count(l => l.StartsWith("sim-0 ", StringComparison.Ordinal)));
        Assert.Equal(2, lines.Count(l => l.StartsWith("acme ", StringComparison.Ordinal)));

        (code, output, _) = await RunAsync((a, o, e) => WatchCommand.RunAsync(a, o, e, terminal: false), "watch", "--once", "--admin", "http://127.0.0.1:1");
        Assert.Equal(1, code);
        Assert.Contains("cannot reach the admin API at http://127.0.0.1:1", output, StringComparison.Ordinal);

        (code, _, errors) = await RunAsync((a, o, e) => WatchCommand.RunAsync(a, o, e, terminal: false), "watch", "--count", "0");
        Assert.Equal(2, code);
        Assert.Contains("--count", errors, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<html>a web page</html>")]
    [InlineData("{\"workers\": 2}")]
    [InlineData("[1, 2]")]
    public async Task AnAddressThatIsNotTheAdminApi_IsOneLineOnStderrAndExit1_NotACrash(string body)
    {
        await using var other = new RawWorker(_ => RawReply.Of(RawWorker.Json(body)));
        var admin = other.BaseUri.ToString();

        foreach (var command in new[] { "status", "workers", "queues" })
        {
            var (code, output, errors) = await RunAsync(AdminCommand.RunAsync, command, "--admin", admin);
            Assert.True(code == 1, $"{command}: {code} {output} {errors}");
            Assert.Empty(output);
            Assert.Equal($"aotproxy {command}: {admin.TrimEnd('/')} did not answer as an AotProxy admin API (is --admin its admin listener?)\n", errors);
        }

        var (exit, printed, _) = await RunAsync((a, o, e) => WatchCommand.RunAsync(a, o, e, terminal: false), "watch", "--once", "--admin", admin);
        Assert.Equal(1, exit);
        Assert.Equal(3, printed.Split('\n').Count(l => l == $"{admin.TrimEnd('/')} did not answer as an AotProxy admin API (is --admin its admin listener?)"));
    }

    private static List<string[]> Lines(Action<TextWriter> write) =>
        [.. Output(write).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))];

    private static string Output(Action<TextWriter> write)
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        write(writer);
        return writer.ToString();
    }

    private static async Task<(int Code, string Output, string Errors)> RunAsync(Func<CliArgs, TextWriter, TextWriter, Task<int>> command, params string[] args)
    {
        using var output = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        using var errors = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var code = await command(CliArgs.Parse(args), output, errors);
        return (code, output.ToString(), errors.ToString());
    }
}
