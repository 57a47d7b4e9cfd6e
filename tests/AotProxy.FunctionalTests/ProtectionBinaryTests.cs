using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Issue 20, per-class protection when the fleet degrades, through the binary (the AOT one in CI)
// with two `aotproxy simulate` workers whose faults are switched through POST /sim/faults. The
// loose class ("default", tenant acme) is shed with 503 class_shed while the strict one
// ("enterprise", tenant vip) never is, stays shed while the fault lasts, and both are served
// again once the fault is cleared. Errors are failed attempts, a retried one too.
public class ProtectionBinaryTests
{
    private const string VipKey = "sk-test-vip";

    // Worker 0 fails every request; round robin sends half the first attempts there and retries
    // them on worker 1: every client is served, but each failed attempt is a fleet error for
    // protection (a third of the attempts, past enterprise's 5%), so a failing worker is not hidden
    // by the retries: default is shed, enterprise gets its answers and is never shed.
    [Fact]
    public async Task FleetErrors_RetriesMadeGood_StillShedTheLooseClass_AndBothAreServedAfterTheFaultsClear()
    {
        await using var fleet = await ProtectedFleet.StartAsync(ErrorProtectionToml.For("2s", 0.05));
        Assert.Equal(HttpStatusCode.OK, (await fleet.AskAsync(TestGateway.Key, stream: true)).Status);

        await fleet.FaultAsync(0, """{"http500_rate":1.0}""");
        var shed = await fleet.ServeEnterpriseUntilShedAsync(stream: false, HttpStatusCode.OK);
        Assert.Contains("max_error_rate of class 'enterprise' (5%)", shed.Message, StringComparison.Ordinal);
        Assert.True(await fleet.RetriesAsync() >= 1, "no attempt was retried");

        await fleet.AssertShedWhileEnterpriseIsServedAsync(stream: false, HttpStatusCode.OK, windows: 3, window: TimeSpan.FromSeconds(2));
        using (var queues = await fleet.QueuesAsync())
        {
            var protection = Protection(queues, "default");
            Assert.True(protection.GetProperty("shedding").GetBoolean());
            Assert.InRange(protection.GetProperty("error_rate").GetDouble(), 0.2, 1.0);
            Assert.NotEqual(JsonValueKind.Null, protection.GetProperty("since").ValueKind);
            Assert.Equal(0.0, protection.GetProperty("admit_fraction").GetDouble());
            Assert.False(Protection(queues, "enterprise").GetProperty("shedding").GetBoolean());
            Assert.Equal(1.0, Protection(queues, "enterprise").GetProperty("admit_fraction").GetDouble());
        }

        var metrics = await fleet.Admin.GetStringAsync("/metrics");
        Assert.Equal((1.0, 0.0), (MetricsText.Value(metrics, "llm_gateway_class_shedding", "class=\"default\""), MetricsText.Value(metrics, "llm_gateway_class_shedding", "class=\"enterprise\"")));
        Assert.Equal(0.0, MetricsText.Value(metrics, "llm_gateway_class_admit_fraction", "class=\"default\""));
        Assert.True(MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"shed\"") >= 3);

        await fleet.FaultAsync(0, """{"clear":true}""");
        await fleet.ServeEnterpriseUntilDefaultIsServedAsync(stream: false);
        metrics = await fleet.Admin.GetStringAsync("/metrics");
        Assert.Equal(0.0, MetricsText.Value(metrics, "llm_gateway_class_shedding", "class=\"default\""));

        // It came back half-open (1 in 4, then 1 in 2); calm, it is admitted whole within a few buckets.
        var whole = Stopwatch.StartNew();
        while (MetricsText.Value(await fleet.Admin.GetStringAsync("/metrics"), "llm_gateway_class_admit_fraction", "class=\"default\"") < 1.0)
        {
            Assert.All(await fleet.EnterpriseBatchAsync(stream: false), status => Assert.Equal(HttpStatusCode.OK, status));
            Assert.True(whole.Elapsed < TimeSpan.FromSeconds(20), "the default class was never admitted whole again");
        }

        await fleet.StopAsync();
    }

    // Both workers' first tokens go from 150 ms to 2 s: over 13x the learned baseline, past
    // enterprise's 4x. Enterprise's streams are slow but served; default's are shed.
    [Fact]
    public async Task SlowFirstTokens_ShedTheLooseClass_WhileTheStrictOneIsServed_AndBothAreServedAfterTheyRecover()
    {
        await using var fleet = await ProtectedFleet.StartAsync("""
            [scheduler]
            protection_window = "4s"
            protection_min_samples = 3

            [[classes]]
            name = "default"
            priority = 2

            [[classes]]
            name = "enterprise"
            priority = 0
            ttft_tolerance = 4.0
            """);
        await fleet.FaultAsync(0, """{"first_byte_delay_ms":150}""");
        await fleet.FaultAsync(1, """{"first_byte_delay_ms":150}""");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Assert.All(await fleet.EnterpriseBatchAsync(stream: true), status => Assert.Equal(HttpStatusCode.OK, status));
            Assert.Equal(HttpStatusCode.OK, (await fleet.AskAsync(TestGateway.Key, stream: true)).Status);
            using var queues = await fleet.QueuesAsync();
            if (Protection(queues, "enterprise").GetProperty("baseline_ttft_seconds").GetDouble() > 0)
            {
                Assert.InRange(Protection(queues, "enterprise").GetProperty("baseline_ttft_seconds").GetDouble(), 0.15, 0.5);
                break;
            }

            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the baseline TTFT was never learned");
        }

        await fleet.FaultAsync(0, """{"first_byte_delay_ms":2000}""");
        await fleet.FaultAsync(1, """{"first_byte_delay_ms":2000}""");
        var shed = await fleet.ServeEnterpriseUntilShedAsync(stream: true, HttpStatusCode.OK);
        Assert.Contains("ttft_tolerance of class 'enterprise' (4x)", shed.Message, StringComparison.Ordinal);
        await fleet.AssertShedWhileEnterpriseIsServedAsync(stream: true, HttpStatusCode.OK, windows: 2, window: TimeSpan.FromSeconds(4));

        await fleet.FaultAsync(0, """{"first_byte_delay_ms":150}""");
        await fleet.FaultAsync(1, """{"first_byte_delay_ms":150}""");
        await fleet.ServeEnterpriseUntilDefaultIsServedAsync(stream: true);
        await fleet.StopAsync();
    }

    private static JsonElement Protection(JsonDocument queues, string className) =>
        queues.RootElement.GetProperty("models")[0].GetProperty("classes").EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == className).GetProperty("protection");

    private sealed record Answer(HttpStatusCode Status, string Code, string Message, int RetryAfter);

    // Two simulators, round robin, retries on the other worker whenever one fails, and breakers
    // that do not open (the test is about the fleet's error rate, not one worker's circuit).
    private sealed class ProtectedFleet : IAsyncDisposable
    {
        private readonly GatewayProcess[] _simulators;
        private readonly string[] _urls;
        private readonly TempDirectory _directory;
        private readonly GatewayProcess _gateway;

        private ProtectedFleet(GatewayProcess[] simulators, string[] urls, TempDirectory directory, GatewayProcess gateway)
        {
            _simulators = simulators;
            _urls = urls;
            _directory = directory;
            _gateway = gateway;
            Data = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
            Admin = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
            Sim = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        }

        public HttpClient Data { get; }

        public HttpClient Admin { get; }

        private HttpClient Sim { get; }

        public static async Task<ProtectedFleet> StartAsync(string protection)
        {
            var simulators = new[]
            {
                GatewayProcess.Start("simulate", "--listen", "127.0.0.1:0", "--model", TestGateway.Model),
                GatewayProcess.Start("simulate", "--listen", "127.0.0.1:0", "--model", TestGateway.Model),
            };
            var urls = new[] { await simulators[0].WaitForSimulatorUrlAsync(), await simulators[1].WaitForSimulatorUrlAsync() };
            var workers = new StringBuilder();
            for (var i = 0; i < urls.Length; i++)
            {
                workers.Append($"""

                    [[workers]]
                    name = "sim-{i}"
                    url = "{urls[i]}"
                    models = ["{TestGateway.Model}"]
                    max_concurrency = 16

                    """);
            }

            var directory = new TempDirectory();
            var gateway = await GatewayProcess.ServeAsync(directory.Path, TestGateway.Toml([], routing: "strategy = \"round_robin\"", extra: workers + $"""

                [circuit_breaker]
                failure_threshold = 1000000

                [retries]
                max_attempts = 2
                budget_ratio = 1.0
                backoff_base = "1ms"
                backoff_max = "1ms"

                [[tenants]]
                name = "vip"
                class = "enterprise"
                api_key_sha256 = ["{ApiKeyIndex.HashKey(VipKey)}"]

                {protection}
                """));
            return new ProtectedFleet(simulators, urls, directory, gateway);
        }

        public async Task FaultAsync(int worker, string faults)
        {
            using var response = await Sim.PostAsync(new Uri(new Uri(_urls[worker]), "/sim/faults"), new StringContent(faults, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        public async Task<Answer> AskAsync(string key, bool stream)
        {
            using var response = await Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream, maxTokens: 4), key: key));
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.OK)
            {
                Assert.True(!stream || body.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal), body);
                return new Answer(response.StatusCode, "", "", 0);
            }

            using var json = JsonDocument.Parse(body);
            var error = json.RootElement.GetProperty("error");
            var code = error.GetProperty("code"); // the gateway's are strings; a worker's 500 passed on has vLLM's number
            return new Answer(response.StatusCode, code.ValueKind == JsonValueKind.String ? code.GetString()! : code.GetRawText(), error.GetProperty("message").GetString() ?? "", (int)(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0));
        }

        // Four enterprise requests at once: enough attempts (and first tokens) per window to judge.
        public async Task<HttpStatusCode[]> EnterpriseBatchAsync(bool stream) =>
            [.. (await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => AskAsync(VipKey, stream)))).Select(a => a.Status)];

        // Enterprise keeps being answered (`enterprise`: what the fleet gives it, never a shed)
        // while the window fills with the fault's outcomes, until a default request is shed: 503
        // overloaded, code class_shed, with a Retry-After.
        public async Task<Answer> ServeEnterpriseUntilShedAsync(bool stream, HttpStatusCode enterprise)
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                Assert.All(await EnterpriseBatchAsync(stream), status => Assert.Equal(enterprise, status));
                // Until it is shed, default gets what the fleet gives enterprise too.
                var answer = await AskAsync(TestGateway.Key, stream);
                if (answer.Status != enterprise)
                {
                    Assert.Equal((HttpStatusCode.ServiceUnavailable, "class_shed"), (answer.Status, answer.Code));
                    Assert.StartsWith("Class 'enterprise' is protected while the fleet degrades, and class 'default' is shed", answer.Message, StringComparison.Ordinal);
                    Assert.InRange(answer.RetryAfter, 1, 60);
                    return answer;
                }

                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "the default class was never shed");
            }
        }

        // While the fault lasts, for whole windows: every default request is shed, and every
        // enterprise one answered with `enterprise`.
        public async Task AssertShedWhileEnterpriseIsServedAsync(bool stream, HttpStatusCode enterprise, int windows, TimeSpan window)
        {
            var held = Stopwatch.StartNew();
            while (held.Elapsed < windows * window)
            {
                Assert.All(await EnterpriseBatchAsync(stream), status => Assert.Equal(enterprise, status));
                Assert.Equal("class_shed", (await AskAsync(TestGateway.Key, stream)).Code);
            }
        }

        // The fault is gone: enterprise traffic refills the window with healthy outcomes, and the
        // default class is served again after a whole window below 0.8x of the tolerance.
        public async Task ServeEnterpriseUntilDefaultIsServedAsync(bool stream)
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                Assert.All(await EnterpriseBatchAsync(stream), status => Assert.Equal(HttpStatusCode.OK, status));
                var answer = await AskAsync(TestGateway.Key, stream);
                if (answer.Status == HttpStatusCode.OK)
                {
                    return;
                }

                Assert.Equal("class_shed", answer.Code);
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(40), "the default class was never served again");
            }
        }

        // llm_gateway_retries_total of the attempts that failed on worker 0.
        public async Task<double> RetriesAsync() =>
            MetricsText.Value(await Admin.GetStringAsync("/metrics"), "llm_gateway_retries_total", "worker=\"sim-0\"");

        public Task<JsonDocument> QueuesAsync() => Admin.GetStringAsync("/api/queues").ContinueWith(t => JsonDocument.Parse(t.Result), TaskScheduler.Default);

        public async Task StopAsync()
        {
            _gateway.SendSigterm();
            Assert.Equal(0, await _gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }

        public async ValueTask DisposeAsync()
        {
            Data.Dispose();
            Admin.Dispose();
            Sim.Dispose();
            await _gateway.DisposeAsync();
            foreach (var simulator in _simulators)
            {
                await simulator.DisposeAsync();
            }

            _directory.Dispose();
        }
    }
}
