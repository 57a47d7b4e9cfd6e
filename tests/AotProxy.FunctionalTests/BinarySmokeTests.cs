using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// The real executable (the AOT binary in CI): serve a stream, apply a config edit from the file
// watcher, finish an in-flight stream on SIGTERM and exit 0.
public class BinarySmokeTests
{
    [Fact]
    public async Task Serve_StreamsReloadsAndShutsDownGracefully()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, Faults = { InterTokenDelay = TimeSpan.FromMilliseconds(30) } },
            new IPEndPoint(IPAddress.Loopback, 0),
            NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-smoke-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]));

        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };

        // 1. A streamed completion, whole.
        using (var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 10))))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // 2. A config edit (a new tenant key) is picked up by the watcher.
        const string newKey = "sk-rotated";
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]).Replace(ApiKeyIndex.HashKey(TestGateway.Key), ApiKeyIndex.HashKey(newKey), StringComparison.Ordinal));
        await TestGateway.WaitUntilAsync(async () =>
        {
            using var probe = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 1), key: newKey));
            return probe.StatusCode == HttpStatusCode.OK;
        }, "the rotated key works");
        using (var old = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key: TestGateway.Key)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
        }

        // 3. SIGTERM with a stream in flight: the stream finishes, then the process exits 0.
        using var inFlight = await http.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 30), key: newKey),
            HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await inFlight.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);
        gateway.SendSigterm();
        Assert.EndsWith("data: [DONE]\n\n", await reader.ReadToEndAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_BadInputAndBrokenUpstreams_GetTheDocumentedAnswersAndLeaveNothingInFlight()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-smoke-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker]));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        async Task<int> StatusOf(HttpRequestMessage request)
        {
            using (request)
            using (var response = await http.SendAsync(request))
            {
                return (int)response.StatusCode;
            }
        }

        Assert.Equal(400, await StatusOf(TestGateway.Post("v1/chat/completions", "{\"model\":")));
        Assert.Equal(404, await StatusOf(TestGateway.Post("v1/chat/completions", "{\"model\":\"nope\"}")));
        Assert.Equal(401, await StatusOf(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key: null)));
        Assert.Equal(413, await StatusOf(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, content: new string('a', 70_000)))));

        worker.Options.Faults.Http500Rate = 1.0;
        Assert.Equal(500, await StatusOf(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false))));
        worker.Options.Faults.Http500Rate = 0;

        worker.Options.Faults.ResetAfterTokens = 2;
        using (var reset = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 40)), HttpCompletionOption.ResponseHeadersRead))
        {
            var body = await reset.Content.ReadAsStreamAsync();
            await Assert.ThrowsAnyAsync<IOException>(() => new StreamReader(body).ReadToEndAsync());
        }

        worker.Options.Faults.ResetAfterTokens = -1;
        worker.Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50);
        var abandoned = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 400)), HttpCompletionOption.ResponseHeadersRead);
        Assert.True(await (await abandoned.Content.ReadAsStreamAsync()).ReadAsync(new byte[32]) > 0);
        abandoned.Dispose();
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.Aborted >= 1), "the worker saw the client's abort");

        await TestGateway.WaitUntilAsync(async () => MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_active_requests") == 0, "nothing is in flight");

        // Of all the above only the reset stream and the abandoned one used the worker: both are
        // accounted, as estimated; the refusals and the 500 are not.
        await TestGateway.WaitUntilAsync(
            async () => MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_estimated_usage_total", "tenant=\"acme\"") == 2,
            "the cut streams are accounted");
        using (var tenants = JsonDocument.Parse(await admin.GetStringAsync("/api/tenants")))
        {
            var acme = tenants.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "acme");
            Assert.Equal((2, 2), (acme.GetProperty("requests").GetInt64(), acme.GetProperty("estimated_requests").GetInt64()));
            Assert.True(acme.GetProperty("completion_tokens").GetInt64() >= 2, "the reset stream relayed 2 tokens");
        }

        Assert.Equal("ok", await http.GetStringAsync("health"));
        worker.Options.Faults.InterTokenDelay = TimeSpan.Zero;
        Assert.Equal(200, await StatusOf(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true))));
        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_ScrapesWorkers_RetriesAndTripsTheBreaker_AndDrainsFromTheCli()
    {
        await using var w0 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        await using var w1 = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-1", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-smoke-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        var toml = TestGateway.Toml([w0, w1], extra: """

            [circuit_breaker]
            failure_threshold = 2
            open_timeout = "60s"
            """).Replace("strategy = \"round_robin\"", "strategy = \"round_robin\"\nmetrics_interval = \"100ms\"", StringComparison.Ordinal);
        await File.WriteAllTextAsync(config, toml);
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        async Task<int> StatusOf(string json)
        {
            using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", json));
            return (int)response.StatusCode;
        }

        // 1. Both workers' /metrics are scraped into the routing state.
        await TestGateway.WaitUntilAsync(
            async () => (await admin.GetStringAsync("/api/workers")).Split("\"fresh\": true").Length == 3,
            "both workers have fresh gauges");
        Assert.Contains("llm_worker_running_requests{worker=\"sim-1\"} 0", await admin.GetStringAsync("/metrics"), StringComparison.Ordinal);

        // 2. sim-0 answers 500: every request is retried on sim-1 and succeeds, and after two
        //    failures sim-0's circuit opens and it gets no more requests. Round robin makes the
        //    count exact: p2c_kv would avoid sim-0 after its first failure (weight_error).
        w0.Options.Faults.Http500Rate = 1.0;
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(200, await StatusOf(TestGateway.Chat(false, maxTokens: 2, content: $"question {i}")));
        }

        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Equal(2, MetricsText.Value(metrics, "llm_gateway_retries_total", "worker=\"sim-0\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_circuit_breaker_state", "worker=\"sim-0\""));
        Assert.Contains("\"state\": \"open\"", await admin.GetStringAsync("/api/circuit-breaker/stats"), StringComparison.Ordinal);

        // 3. `aotproxy drain` takes sim-1 out too: nothing is routable, so 503 and not ready.
        var (drainExit, drainOutput) = await GatewayProcess.RunToEndAsync("drain", "sim-1", "--admin", gateway.AdminUri!.ToString());
        Assert.True(drainExit == 0, drainOutput);
        Assert.Equal(503, await StatusOf(TestGateway.Chat(false)));
        using (var ready = await admin.GetAsync("/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }

        // 4. The breaker reset and the fault gone, sim-0 serves again; undrain restores sim-1.
        w0.Options.Faults.Http500Rate = 0;
        using (var reset = await admin.PostAsync("/api/circuit-breaker/sim-0/reset", null))
        {
            Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        }

        Assert.Equal(200, await StatusOf(TestGateway.Chat(false)));
        var (undrainExit, undrainOutput) = await GatewayProcess.RunToEndAsync("undrain", "sim-1", "--admin", gateway.AdminUri!.ToString());
        Assert.True(undrainExit == 0, undrainOutput);
        Assert.Contains("\"routable\": true", await admin.GetStringAsync("/api/workers"), StringComparison.Ordinal);
        Assert.DoesNotContain("\"routable\": false", await admin.GetStringAsync("/api/workers"), StringComparison.Ordinal);

        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_TenantRpm_RefusesWith429AndTheOpenAiHeaders_AndReportsWhatIsLeft()
    {
        const string key = "sk-smoke-limited";
        await using var worker = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-smoke-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"""

            [[tenants]]
            name = "rl"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(key)}"]
            rpm = 2
            tpm = 100000
            """));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        for (var left = 1; left >= 0; left--)
        {
            using var ok = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4), key));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal(left.ToString(System.Globalization.CultureInfo.InvariantCulture), ok.Headers.GetValues("x-ratelimit-remaining-requests").Single());
            Assert.Equal("100000", ok.Headers.GetValues("x-ratelimit-limit-tokens").Single());
        }

        using (var refused = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), key)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.ToString());
            Assert.Equal("0", refused.Headers.GetValues("x-ratelimit-remaining-requests").Single());
            using var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Equal("rate_limit_exceeded", error.RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal("requests", error.RootElement.GetProperty("error").GetProperty("type").GetString());
        }

        async Task<JsonElement> Rl()
        {
            using var tenants = JsonDocument.Parse(await admin.GetStringAsync("/api/tenants"));
            return Fleet.Named(tenants.RootElement, "rl").Clone();
        }

        // The streams' settlement runs just after their last byte went out.
        await TestGateway.WaitUntilAsync(async () => (await Rl()).GetProperty("limited_in_flight").GetInt32() == 0, "nothing of rl is in flight");
        var rl = await Rl();
        Assert.Equal(0, rl.GetProperty("remaining_requests").GetInt64());
        Assert.InRange(rl.GetProperty("remaining_tokens").GetInt64(), 99_000, 100_000);

        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Equal(1, MetricsText.Value(metrics, "llm_rate_limiter_rejected_total", "tenant=\"rl\"", "reason=\"requests\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"429\""));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_QueuesBeyondTheSlots_RefusesWhenFullOrTooLate_AndLeaksNoSlot()
    {
        // Two sequence slots on the only worker, streams of ~5 s: the third and fourth request
        // wait (queue_capacity 2), the fifth finds the queue full, the waiting ones time out after
        // 2 s. The test must see both waiting and send the fifth within that wait: 500 ms was short
        // enough for a loaded host's polling of /api/queues to miss.
        await using var worker = await SimulatedWorker.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 2 }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        worker.Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50);
        var directory = Directory.CreateTempSubdirectory("aotproxy-smoke-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: """

            [scheduler]
            queue_capacity = 2

            [[classes]]
            name = "default"
            max_queue_wait = "2s"
            """));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        var streams = new List<HttpResponseMessage>();
        for (var i = 0; i < 2; i++)
        {
            streams.Add(await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 100)), HttpCompletionOption.ResponseHeadersRead));
            Assert.Equal(HttpStatusCode.OK, streams[^1].StatusCode);
        }

        var queued = Enumerable.Range(0, 2).Select(_ => http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)))).ToList();
        await TestGateway.WaitUntilAsync(async () => (await admin.GetStringAsync("/api/queues")).Contains("\"waiting\": 2", StringComparison.Ordinal), "two requests wait");

        using (var full = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, full.StatusCode);
            Assert.True(full.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), full.Headers.RetryAfter?.ToString());
            using var error = JsonDocument.Parse(await full.Content.ReadAsStringAsync());
            Assert.Equal("overloaded", error.RootElement.GetProperty("error").GetProperty("code").GetString());
            Assert.Contains("queue", error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

            // Never queued: position 0; the two streams' grants in the last 10 s: 0.2 grants/s.
            Assert.Equal("0", full.Headers.GetValues("x-gateway-queue-position").Single());
            Assert.Equal("0.2", full.Headers.GetValues("x-gateway-grant-rate").Single());
            Assert.Contains("queue position 0, 0.2 grants/s", error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        foreach (var late in queued)
        {
            using var response = await late.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Contains("max_queue_wait", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            // Queued behind nobody but the other late one: first or second when its wait ended.
            Assert.InRange(int.Parse(response.Headers.GetValues("x-gateway-queue-position").Single(), System.Globalization.CultureInfo.InvariantCulture), 1, 2);
            Assert.Equal("0.2", response.Headers.GetValues("x-gateway-grant-rate").Single());
        }

        foreach (var stream in streams)
        {
            using (stream)
            {
                Assert.EndsWith("data: [DONE]\n\n", await stream.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }

        using (var after = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
        {
            Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        }

        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Equal(3, MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"admitted\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"queue_full\""));
        Assert.Equal(2, MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"timed_out\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_queue_depth", "class=\"default\""));
        await TestGateway.WaitUntilAsync(async () => (await admin.GetStringAsync("/api/queues")).Contains("\"in_use\": 0", StringComparison.Ordinal), "every slot is free again");
        var (queuesExit, queuesOutput) = await GatewayProcess.RunToEndAsync("queues", "--json", "--admin", gateway.AdminUri!.ToString());
        Assert.True(queuesExit == 0, queuesOutput);
        Assert.Contains("\"policy\": \"fairshare\"", queuesOutput, StringComparison.Ordinal);

        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Serve_Jwt_VerifiesRs256Es256FromARelativeJwksAndHs256FromTheEnvironment()
    {
        // The child process inherits this process's environment.
        const string secretEnv = "AOTPROXY_SMOKE_JWT_SECRET";
        Environment.SetEnvironmentVariable(secretEnv, TestJwt.Secret);
        using var rsa = RSA.Create(2048);
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-smoke-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(Path.Combine(directory.FullName, "jwks.json"), TestJwt.Jwks(TestJwt.RsaJwk(rsa, "r1"), TestJwt.EcJwk(ec, "e1")));
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $$"""

            [jwt]
            hs256_secret_env = "{{secretEnv}}"
            jwks_file = "jwks.json"
            issuer = "https://idp.test"
            """));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        var now = DateTimeOffset.UtcNow;
        var claims = TestJwt.Claims("acme", now, "\"iss\":\"https://idp.test\"");

        async Task<(int Status, string Message)> Send(string token)
        {
            using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 2), key: token));
            var body = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, response.IsSuccessStatusCode ? body : System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString()!);
        }

        Assert.Equal(200, (await Send(TestJwt.Rs256(rsa, claims, "r1"))).Status);
        Assert.Equal(200, (await Send(TestJwt.Es256(ec, claims, "e1"))).Status);
        Assert.Equal(200, (await Send(TestJwt.Hs256(claims))).Status);

        var expired = await Send(TestJwt.Rs256(rsa, TestJwt.Claims("acme", now.AddHours(-2), "\"iss\":\"https://idp.test\""), "r1"));
        Assert.Equal(401, expired.Status);
        Assert.Contains("expired", expired.Message, StringComparison.Ordinal);
        var none = await Send(TestJwt.Segment("{\"alg\":\"none\"}") + "." + TestJwt.Segment(claims) + ".");
        Assert.Equal(401, none.Status);
        Assert.Contains("'none'", none.Message, StringComparison.Ordinal);
        var wrongIssuer = await Send(TestJwt.Rs256(rsa, TestJwt.Claims("acme", now, "\"iss\":\"https://evil.test\""), "r1"));
        Assert.Equal(401, wrongIssuer.Status);
        Assert.Contains("issuer", wrongIssuer.Message, StringComparison.Ordinal);
        Assert.Equal(401, (await Send(TestJwt.Rs256(rsa, claims, "r2"))).Status);

        gateway.SendSigterm();
        Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(15)));

        // A broken key set is a config error with its key, from the binary's own JSON reader.
        await File.WriteAllTextAsync(Path.Combine(directory.FullName, "jwks.json"), "{\"keys\": [{\"kty\": \"RSA\", \"n\": 5}]}");
        var (exitCode, output) = await GatewayProcess.RunToEndAsync("check-config", config);
        Assert.Equal(1, exitCode);
        Assert.Contains("jwt.jwks_file", output, StringComparison.Ordinal);
        Assert.Contains("jwks.json is not a JSON Web Key Set", output, StringComparison.Ordinal);
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task Demo_ServesTheReadmeCurlAndStopsOnSigterm()
    {
        await using var demo = GatewayProcess.Start("demo", "--workers", "2", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0");
        await demo.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = demo.DataUri };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "sk-demo-key");

        using var response = await http.PostAsync("v1/chat/completions", new StringContent(
            """{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":"Hello!"}],"max_tokens":8}""",
            System.Text.Encoding.UTF8,
            "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"usage\":", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("curl -sN", demo.Output, StringComparison.Ordinal);

        // The live console's address, printed and served.
        var dashboard = new Uri(demo.AdminUri!, "dashboard");
        Assert.Contains("Dashboard (live, in a browser): " + dashboard, demo.Output, StringComparison.Ordinal);
        using (var page = await http.GetAsync(dashboard))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        }

        demo.SendSigterm();
        Assert.Equal(0, await demo.WaitForExitAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task CheckConfig_BrokenFile_PrintsEveryProblemWithItsLine()
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, "[server]\nlisten = \"127.0.0.1:8080\"\nlistne = 1\n\n[[workers]]\nname = \"a\"\nurl = \"not a url\"\n");

        var (exitCode, output) = await GatewayProcess.RunToEndAsync("check-config", file);

        Assert.Equal(1, exitCode);
        Assert.Contains("line 3", output, StringComparison.Ordinal);
        Assert.Contains("listne", output, StringComparison.Ordinal);
        Assert.Contains("line 7", output, StringComparison.Ordinal);
        File.Delete(file);
    }

    [Fact]
    public async Task HashKey_PrintsTheSha256()
    {
        var (exitCode, output) = await GatewayProcess.RunToEndAsync("hash-key", "sk-demo-key");
        Assert.Equal(0, exitCode);
        Assert.Equal(ApiKeyIndex.HashKey("sk-demo-key"), output.Trim());
    }

    [Fact]
    public async Task Serve_InvalidConfig_ExitsNonZeroWithTheLine()
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, "[routing]\nstrategy = \"random\"\n");
        var (exitCode, output) = await GatewayProcess.RunToEndAsync("serve", "--config", file);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("line 2", output, StringComparison.Ordinal);
        File.Delete(file);
    }
}
