using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;

namespace AotProxy.FunctionalTests;

// [routing] warmup (on by default; the harness turns it off elsewhere, see TestGateway.Toml): a
// worker that joins or recovers answers one real request from the gateway before it takes traffic.
public class WarmupTests
{
    // Fast checks; three missed in a row mark a worker unhealthy, so one slow check on a busy
    // machine does not take the only warm worker out (a 503 for no fault of the test's).
    private const string FastHealth = """

        [health]
        interval = "200ms"
        timeout = "200ms"
        unhealthy_threshold = 3
        healthy_threshold = 1
        """;

    [Fact]
    public async Task Start_EachWorkerIsWarmedUpBeforeTheReadyLine_AndTheFirstRequestIsServed()
    {
        await using var gateway = await BinaryGateway.StartAsync(2, warmup: true);

        // Read right after "ready": the warm-ups came first, one each, and left nobody warming.
        Assert.Equal([1L, 1L], gateway.Workers.Select(w => w.Stats.RequestsTotal));
        var stats = await RoutingStatsAsync(gateway.Admin);
        Assert.All(stats, w => Assert.False(w.Value.GetProperty("warming").GetBoolean()));
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task AWorkerWhoseWarmupFails_TakesNoTraffic_UntilItsWarmupAnswers()
    {
        await using var gateway = await BinaryGateway.StartAsync(2, warmup: true, extraToml: FastHealth, configure: o =>
        {
            if (o.Name == "sim-1")
            {
                o.Faults.Http500Rate = 1.0;
            }
        });
        var cold = gateway.Workers[1];
        Assert.True((await RoutingStatsAsync(gateway.Admin))["sim-1"].GetProperty("warming").GetBoolean());
        await TestGateway.WaitUntilAsync(() => Task.FromResult(cold.Stats.RequestsTotal >= 2), "the failed warm-up is tried again");

        for (var i = 0; i < 4; i++)
        {
            using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(0, (await RoutingStatsAsync(gateway.Admin))["sim-1"].GetProperty("decisions").GetInt64()); // never picked while warming

        cold.Options.Faults.Http500Rate = 0;
        await TestGateway.WaitUntilAsync(async () => !(await RoutingStatsAsync(gateway.Admin))["sim-1"].GetProperty("warming").GetBoolean(), "sim-1 warms up");
        for (var i = 0; i < 4; i++)
        {
            using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4)));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.True((await RoutingStatsAsync(gateway.Admin))["sim-1"].GetProperty("decisions").GetInt64() > 0, "sim-1 takes traffic once warm");
    }

    [Fact]
    public async Task AWorkerWhoseHealthComesBack_WarmsUpBeforeItTakesTraffic()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, warmup: true, extraToml: FastHealth);
        var worker = gateway.Workers[0];
        var faults = worker.Options.Faults;
        faults.UnhealthyHealth = true;
        await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("health").GetString() == "unhealthy", "sim-0 is unhealthy");

        // Healthy again, but its warm-up fails: it stays out.
        faults.Http500Rate = 1.0;
        var before = worker.Stats.RequestsTotal;
        faults.UnhealthyHealth = false;
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal > before), "the returning worker gets its warm-up request");
        var report = await Fleet.WorkerAsync(gateway, "sim-0");
        Assert.Equal("healthy", report.GetProperty("health").GetString());
        Assert.True(report.GetProperty("warming").GetBoolean());
        Assert.False(report.GetProperty("routable").GetBoolean());
        using (var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false))))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode); // the gateway's own: no routable worker
            Assert.Contains("\"code\":\"overloaded\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        faults.Http500Rate = 0;
        await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("routable").GetBoolean(), "sim-0 warms up and is routable");
        using var served = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task AWorkerAReloadAdds_AnswersItsWarmupBeforeAnyClientRequest()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, watch: true, warmup: true);
        await using var added = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-added", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        added.Options.Faults.FirstByteDelay = TimeSpan.FromSeconds(2); // its warm-up takes a while: a window to look into

        var before = gateway.Store.Current.Revision;
        await File.WriteAllTextAsync(gateway.ConfigPath, TestGateway.Toml([.. gateway.Workers, added], warmup: true));
        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Store.Current.Revision > before), "the reload is applied");
        var joining = await Fleet.WorkerAsync(gateway, "sim-added");
        Assert.True(joining.GetProperty("warming").GetBoolean(), joining.ToString());
        Assert.False(joining.GetProperty("routable").GetBoolean());

        await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-added")).GetProperty("routable").GetBoolean(), "sim-added warms up");

        Assert.Equal(1, added.Stats.RequestsTotal); // the warm-up, and nothing before it
        Assert.Equal(0, (await Fleet.WorkerAsync(gateway, "sim-added")).GetProperty("requests").GetInt64()); // no client request yet
    }

    private static async Task<Dictionary<string, JsonElement>> RoutingStatsAsync(HttpClient admin)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/routing/stats"));
        return json.RootElement.GetProperty("workers").EnumerateArray().ToDictionary(w => w.GetProperty("name").GetString()!, w => w.Clone());
    }
}
