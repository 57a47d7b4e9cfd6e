using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using AotProxy.Cli;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// A worker's max_concurrency is a bound the gateway keeps, and a granted slot always has a worker
// behind it. Against the binary (the AOT one in CI), with simulated workers in this process.
public class CapacityTests
{
    // Issue 14, item 6: four workers of 4 sequences whose queue holds 2 more, each given
    // max_concurrency = 6: the fleet has exactly the 24 slots the gateway grants. Bursts of 24 and
    // 40 streams: no worker ever holds more than 6 (so none answers 503 for a full queue), no
    // breaker opens, every client gets its whole stream; in the burst of 40, 16 wait in the
    // gateway's queue instead of a worker's.
    [Fact]
    public async Task Bursts_NoWorkerGetsMoreThanItsMaxConcurrency_AndEveryStreamSucceeds()
    {
        const int maxConcurrency = 6;
        var workers = new List<SimulatedWorker>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                workers.Add(await SimulatedWorker.StartAsync(
                    new SimulatorOptions { Name = $"sim-{i}", Model = TestGateway.Model, MaxNumSeqs = 4, MaxNumWaiting = 2 },
                    new IPEndPoint(IPAddress.Loopback, 0),
                    NullLoggerFactory.Instance));
            }

            var directory = Directory.CreateTempSubdirectory("aotproxy-capacity-");
            var config = Path.Combine(directory.FullName, "aotproxy.toml");
            await File.WriteAllTextAsync(config, TestGateway.Toml([], extra: Sections(workers, maxConcurrency), routing: "strategy = \"p2c_kv\""));
            await using var gateway = GatewayProcess.Start("serve", "--config", config);
            await gateway.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
            using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

            foreach (var burst in new[] { 24, 40 })
            {
                var answers = await Task.WhenAll(Enumerable.Range(0, burst).Select(i => StreamAsync(http, $"burst {burst} stream {i}")));
                var failed = answers.Where(a => a.Status != 200 || !a.Body.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal)).ToArray();
                Assert.True(failed.Length == 0, $"burst of {burst}: {failed.Length} failed, e.g. {failed.FirstOrDefault()}");
            }

            Assert.All(workers, w => Assert.True(
                w.Stats.MaxInEngine <= maxConcurrency && w.Stats.QueueFull == 0,
                $"{w.Options.Name}: at most {w.Stats.MaxInEngine} at once, {w.Stats.QueueFull} answered 503 for a full queue"));
            Assert.Equal(64, workers.Sum(w => w.Stats.RequestsTotal)); // no retries were needed
            foreach (var breaker in (await GetJsonAsync(admin, "/api/circuit-breaker/stats")).EnumerateArray())
            {
                Assert.Equal((0L, 0L), (breaker.GetProperty("times_opened").GetInt64(), breaker.GetProperty("failures").GetInt64()));
            }

            await AssertEverySlotBackAsync(admin);

            gateway.SendSigterm();
            Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
            directory.Delete(recursive: true);
        }
        finally
        {
            foreach (var worker in workers)
            {
                await worker.DisposeAsync();
            }
        }
    }

    // Issue 14, item 4: requests queued when every worker went away (health failing, breakers
    // opened by the requests that were on them) stay queued through the outage and are served
    // when the workers come back, within max_queue_wait. Their breakers come back half-open,
    // where only one trial at a time goes through: the gateway grants no more than that until
    // the trial closed the circuit, instead of granting every waiter a slot that no worker will
    // take (503 no_worker).
    [Fact]
    public async Task Outage_RequestsQueuedWhileEveryWorkerIsGone_AreServedWhenTheyReturn()
    {
        await using var w0 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        await using var w1 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-1", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        SimulatedWorker[] workers = [w0, w1];
        var directory = Directory.CreateTempSubdirectory("aotproxy-capacity-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([], activityTimeout: "3s", extra: Sections(workers, maxConcurrency: 2) + """

            [health]
            interval = "250ms"
            timeout = "250ms"
            unhealthy_threshold = 3
            healthy_threshold = 1

            [circuit_breaker]
            failure_threshold = 1
            success_threshold = 1
            open_timeout = "1s"
            half_open_max_requests = 1

            [retries]
            max_attempts = 1
            """));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        await TestGateway.WaitUntilAsync(async () => (await GetJsonAsync(admin, "/api/workers")).EnumerateArray().All(w => w.GetProperty("health").GetString() == "healthy"), "both workers are healthy");

        // 1. Four requests hang on the workers and hold all four slots; eight more queue behind them.
        foreach (var worker in workers)
        {
            worker.Options.Faults.Hang = true;
        }

        var hung = Enumerable.Range(0, 4).Select(i => StatusAsync(http, $"hung {i}")).ToArray();
        await TestGateway.WaitUntilAsync(() => Task.FromResult(workers.Sum(w => w.Stats.RequestsTotal) == 4), "four requests hang on the workers");
        var queued = Enumerable.Range(0, 8).Select(i => StatusAsync(http, $"queued {i}")).ToArray();
        await TestGateway.WaitUntilAsync(async () => (await GetJsonAsync(admin, "/api/queues")).GetProperty("models")[0].GetProperty("waiting").GetInt32() == 8, "eight requests wait");

        // 2. The outage: both workers fail their health checks, and the hung requests time out
        //    (504), which opens both breakers.
        foreach (var worker in workers)
        {
            worker.Options.Faults.Hang = false;
            worker.Options.Faults.UnhealthyHealth = true;
        }

        await TestGateway.WaitUntilAsync(async () => (await GetJsonAsync(admin, "/api/workers")).EnumerateArray().All(w => w.GetProperty("health").GetString() == "unhealthy"), "both workers are unhealthy");
        Assert.All(await Task.WhenAll(hung), status => Assert.Equal(504, status));
        Assert.All(queued, q => Assert.False(q.IsCompleted, "a queued request ended during the outage"));
        var breakers = await GetJsonAsync(admin, "/api/circuit-breaker/stats");
        Assert.All(breakers.EnumerateArray(), b => Assert.Equal("open", b.GetProperty("state").GetString()));

        // 3. Past open_timeout the breakers would let trials through; then the workers come back.
        var reopenable = breakers.EnumerateArray().Max(b => b.GetProperty("last_transition").GetDateTimeOffset()) + TimeSpan.FromSeconds(1);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow > reopenable + TimeSpan.FromMilliseconds(200)), "open_timeout has passed");
        foreach (var worker in workers)
        {
            worker.Options.Faults.UnhealthyHealth = false;
        }

        var statuses = await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(statuses.All(s => s == 200), "queued requests got " + string.Join(", ", statuses));
        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Equal(8, Fleet.Sum(string.Join('\n', metrics.Split('\n').Where(l => l.Contains("outcome=\"granted\"", StringComparison.Ordinal))), "llm_gateway_admissions_total"));
        await AssertEverySlotBackAsync(admin);
        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    // Issue 14, item 7: a reload removes every worker of a model. The model is still one the
    // gateway served, so a request for it is 503 overloaded with Retry-After (which SDKs retry),
    // not 404 model_not_found (which they do not); a name no worker ever served stays 404; the
    // worker's return serves the model again.
    [Fact]
    public async Task Reload_EveryWorkerOfAModelRemoved_Is503WithRetryAfter_AndAnUnknownModelStays404()
    {
        const string otherModel = "other-model";
        await using var w0 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        await using var w1 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-1", Model = otherModel }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-capacity-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([w0, w1]));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
        Assert.Equal(200, await StatusAsync(http, "served"));

        await File.WriteAllTextAsync(config, TestGateway.Toml([w1]));
        await ReloadAsync(admin);

        using (var removed = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
        {
            var body = await removed.Content.ReadAsStringAsync();
            Assert.True(removed.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)removed.StatusCode}: {body}");
            Assert.Equal("overloaded", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.True(removed.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 }, $"retry-after: {removed.Headers.RetryAfter}");
        }

        using (var unknown = await http.SendAsync(TestGateway.Post("v1/chat/completions", """{"model":"no-such-model","messages":[]}""")))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Contains("model_not_found", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await File.WriteAllTextAsync(config, TestGateway.Toml([w0, w1]));
        await ReloadAsync(admin);
        Assert.Equal(200, await StatusAsync(http, "served again"));
        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    // Item 7 for a worker configured without `models` that has not reported its models yet
    // (down since the start): any model may be one of its, so a model no other worker serves is
    // 503 with Retry-After rather than 404, until every worker's models are known.
    [Fact]
    public async Task Discovery_AWorkerHasNotReportedItsModels_AModelNoOtherServesIs503()
    {
        await using var w0 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop(); // nothing listens there: connections are refused
        var directory = Directory.CreateTempSubdirectory("aotproxy-capacity-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([w0], extra: $"""

            [[workers]]
            name = "undiscovered"
            url = "http://127.0.0.1:{port}/"
            max_concurrency = 4
            """));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };

        using var pending = await http.SendAsync(TestGateway.Post("v1/chat/completions", """{"model":"its-model","messages":[]}"""));
        var body = await pending.Content.ReadAsStringAsync();

        Assert.True(pending.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)pending.StatusCode}: {body}");
        Assert.Equal("overloaded", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.True(pending.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 }, $"retry-after: {pending.Headers.RetryAfter}");
        Assert.Equal(200, await StatusAsync(http, "the configured model is served"));
        directory.Delete(recursive: true);
    }

    // Issue 20, graduated holdback: with holdback 0.5 and two bands, the less important class
    // ("default", P4) is admitted only below 50% of the fleet's 4 slots, with no threshold of its
    // own; the most important ("urgent", P0) still takes the slots it leaves. The two held
    // requests hang on the worker, so utilization stays where the test put it.
    [Fact]
    public async Task Holdback_LessImportantClassStopsAtHalfTheFleet_TheMostImportantIsStillServed()
    {
        const string urgentKey = "sk-test-urgent";
        await using var worker = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 4 }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-capacity-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([], activityTimeout: "3s", extra: Sections([worker], maxConcurrency: 4) + $"""

            [scheduler]
            holdback = 0.5

            [retries]
            max_attempts = 1

            [[classes]]
            name = "default"
            priority = 4

            [[classes]]
            name = "urgent"
            priority = 0

            [[tenants]]
            name = "vip"
            class = "urgent"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(urgentKey)}"]
            """));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
        worker.Options.Faults.Hang = true;

        var held = Enumerable.Range(0, 2).Select(i => StatusAsync(http, $"held {i}")).ToArray();
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 2), "two default requests hang on the worker");
        using (var refused = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4, content: "third"))))
        {
            using var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.StartsWith("Class 'default' may use up to 50 %", body.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.True(refused.Headers.RetryAfter is not null, "a refusal says when to retry");
        }

        var urgent = http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4, content: "urgent"), key: urgentKey));
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 3), "the urgent request reaches the worker past the default class's holdback");
        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Equal(
            (2.0, 1.0, 1.0),
            (MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"admitted\""),
             MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"capacity_guard\""),
             MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"urgent\"", "outcome=\"admitted\"")));

        worker.Options.Faults.Hang = false;
        (await urgent).Dispose(); // the activity timeout (3 s) ends the hung ones
        await Task.WhenAll(held);
        await AssertEverySlotBackAsync(admin);
        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    private static Task AssertEverySlotBackAsync(HttpClient admin) =>
        TestGateway.WaitUntilAsync(
            async () => (await GetJsonAsync(admin, "/api/workers")).EnumerateArray().All(w => w.GetProperty("slots_taken").GetInt32() == 0),
            "every worker slot came back");

    private static async Task ReloadAsync(HttpClient admin)
    {
        using var response = await admin.PostAsync("/api/config/reload", null);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK && body.Contains("\"ok\": true", StringComparison.Ordinal), body);
    }

    // [[workers]] sections for the simulators, with a max_concurrency of the test's choosing.
    private static string Sections(IEnumerable<SimulatedWorker> workers, int maxConcurrency) =>
        string.Concat(workers.Select(w => DemoCommand.WorkerSection(w).Replace(
            $"max_concurrency = {w.Options.MaxNumSeqs}", $"max_concurrency = {maxConcurrency}", StringComparison.Ordinal)));

    private static async Task<(int Status, string Body)> StreamAsync(HttpClient http, string content)
    {
        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 128, content: content)));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<int> StatusAsync(HttpClient http, string content)
    {
        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4, content: content)));
        return (int)response.StatusCode;
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient admin, string path)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync(path));
        return json.RootElement.Clone();
    }
}
