using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Workers that fail in the ways real vLLM servers do (hangs, resets, 500s) behind a gateway with
// two workers: a failure before the first response byte is retried on the other worker and
// feeds the breaker; a failure after it is the client's to see, never retried.
public class FailureModeTests
{
    private static readonly TimeSpan ReadBound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task HangingWorker_TripsItsBreaker_TrafficMovesAway_AndResetClosesIt()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2, activityTimeout: "1s", extraToml: """

            [circuit_breaker]
            failure_threshold = 2
            open_timeout = "5m"
            """);
        var healthy = gateway.Workers[0];
        var hanging = gateway.Workers[1];
        hanging.Options.Faults.Hang = true;

        // Round robin reaches the hanging worker within two requests, and once a retry has moved
        // the cursor on, every request after that starts there: two timeouts in three requests.
        await SendUntilAsync(gateway, () => hanging.Stats.FaultsInjected == 2);
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_healthy_workers", $"model=\"{TestGateway.Model}\""));
        var breaker = await Fleet.BreakerAsync(gateway, "sim-1");
        Assert.Equal("open", breaker.GetProperty("state").GetString());
        Assert.Equal(2, breaker.GetProperty("failures").GetInt64());
        Assert.Equal(1, breaker.GetProperty("times_opened").GetInt64());
        Assert.Equal("closed", (await Fleet.BreakerAsync(gateway, "sim-0")).GetProperty("state").GetString());
        var worker = await Fleet.WorkerAsync(gateway, "sim-1");
        Assert.False(worker.GetProperty("routable").GetBoolean());
        Assert.Equal("open", worker.GetProperty("breaker").GetString());

        var metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_circuit_breaker_state", "worker=\"sim-1\""));
        Assert.True(Fleet.HasSeries(metrics, "llm_circuit_breaker_state", "worker=\"sim-0\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_state", "worker=\"sim-0\""));
        Assert.Equal(2, MetricsText.Value(metrics, "llm_gateway_retries_total", "worker=\"sim-1\""));
        Assert.Equal(2, MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"sim-1\""));

        // Open: the hanging worker sees nothing more, and nobody waits on it.
        // Nobody waits on it: the gateway starts no attempt there (its own count, /api/workers
        // "requests", which counts an attempt before it connects), rather than a wall-clock bound
        // on the six requests, which a loaded host could break with nothing wrong.
        var hangingBefore = hanging.Stats.RequestsTotal;
        var attemptsBefore = (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("requests").GetInt64();
        var spread = await Fleet.SpreadAsync(gateway, 6);
        Assert.Equal(new[] { 6, 0 }, spread);
        Assert.Equal(hangingBefore, hanging.Stats.RequestsTotal);
        Assert.Equal(attemptsBefore, (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("requests").GetInt64());
        Assert.Equal(2, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_retries_total", "worker=\"sim-1\""));

        // Reset: closed at once (open_timeout is 5 minutes), and the worker takes traffic again.
        hanging.Options.Faults.Hang = false;
        var reset = await Fleet.PostJsonAsync(gateway, "/api/circuit-breaker/sim-1/reset");
        Assert.Equal("closed", Fleet.Named(reset, "sim-1").GetProperty("state").GetString());
        Assert.Equal(0, Fleet.Named(reset, "sim-1").GetProperty("consecutive_failures").GetInt32());
        Assert.True((await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("routable").GetBoolean());
        Assert.Equal(0, MetricsText.Value(await gateway.MetricsAsync(), "llm_circuit_breaker_state", "worker=\"sim-1\""));
        Assert.Equal(new[] { 2, 2 }, await Fleet.SpreadAsync(gateway, 4));
        Assert.Equal(HttpStatusCode.NotFound, (await gateway.Admin.PostAsync("/api/circuit-breaker/nobody/reset", null)).StatusCode);
        Assert.True(healthy.Stats.Aborted == 0, "the healthy worker lost a request");
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task OpenBreaker_HalfOpensAfterOpenTimeout_AFailedTrialReopens_SuccessfulTrialsClose()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2, activityTimeout: "1s", extraToml: """

            [circuit_breaker]
            failure_threshold = 1
            success_threshold = 2
            open_timeout = "500ms"
            half_open_max_requests = 1
            """);
        var flaky = gateway.Workers[1];
        flaky.Options.Faults.Hang = true;

        await SendUntilAsync(gateway, () => flaky.Stats.FaultsInjected == 1);
        Assert.Equal("open", (await Fleet.BreakerAsync(gateway, "sim-1")).GetProperty("state").GetString());

        // After open_timeout the worker may take one trial; it still hangs, so the breaker opens again.
        await WaitUntilRoutableAsync(gateway, "sim-1");
        await SendUntilAsync(gateway, () => flaky.Stats.FaultsInjected == 2);
        var breaker = await Fleet.BreakerAsync(gateway, "sim-1");
        Assert.Equal("open", breaker.GetProperty("state").GetString());
        Assert.Equal(2, breaker.GetProperty("times_opened").GetInt64());

        // Fixed: two successful trials close it.
        flaky.Options.Faults.Hang = false;
        await WaitUntilRoutableAsync(gateway, "sim-1");
        var served = await Fleet.SpreadAsync(gateway, 4);
        Assert.Equal(2, served[1]);
        // The second trial's success counts once its answer has gone out (see SlowFirstBytes_...).
        await TestGateway.WaitUntilAsync(async () => (await Fleet.BreakerAsync(gateway, "sim-1")).GetProperty("state").GetString() == "closed", "sim-1's breaker closes");
        Assert.Equal(0, MetricsText.Value(await gateway.MetricsAsync(), "llm_circuit_breaker_state", "worker=\"sim-1\""));
        Assert.Equal(2, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_retries_total", "worker=\"sim-1\""));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task SlowFirstBytes_AreServedButOpenTheBreaker()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2, extraToml: """

            [circuit_breaker]
            failure_threshold = 2
            slow_call_threshold = "300ms"
            open_timeout = "5m"
            """);
        var slow = gateway.Workers[1];
        slow.Options.Faults.FirstByteDelay = TimeSpan.FromMilliseconds(700);

        // Round robin without retries alternates: four requests, two of them slow but answered.
        Assert.Equal(new[] { 2, 2 }, await Fleet.SpreadAsync(gateway, 4));
        // The verdict on an attempt is recorded once its answer has gone out, so the client may
        // read the breaker a moment before the second slow call counts (CI saw "closed" so).
        await TestGateway.WaitUntilAsync(async () => (await Fleet.BreakerAsync(gateway, "sim-1")).GetProperty("state").GetString() == "open", "sim-1's breaker opens");
        var breaker = await Fleet.BreakerAsync(gateway, "sim-1");
        Assert.Equal(2, breaker.GetProperty("failures").GetInt64());
        Assert.Equal(0, Fleet.Sum(await gateway.MetricsAsync(), "llm_gateway_retries_total")); // an answer, however slow, is not retried

        Assert.Equal(new[] { 4, 0 }, await Fleet.SpreadAsync(gateway, 4));
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_healthy_workers", $"model=\"{TestGateway.Model}\""));
    }

    [Fact]
    public async Task ResetMidStream_CutsTheClientCleanly_WithNoRetry_AndTheGatewayKeepsServing()
    {
        // Both workers reset after 3 tokens: a retry, wherever it went, would show in the counts.
        await using var gateway = await TestGateway.StartAsync(workers: 2, configure: o => o.Faults.ResetAfterTokens = 3);

        using var response = await gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 50)),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var received = new List<string>();
        using var bound = new CancellationTokenSource(ReadBound);
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (await reader.ReadLineAsync(bound.Token) is { } line)
            {
                received.Add(line);
            }
        });

        var events = received.Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(events); // the first tokens did reach the client before the cut
        Assert.DoesNotContain("data: [DONE]", events);
        Assert.Equal(1, gateway.Workers.Sum(w => w.Stats.RequestsTotal));
        Assert.Equal(1, gateway.Workers.Sum(w => w.Stats.Resets));

        await Fleet.AssertNothingInFlightAsync(gateway);
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(0, Fleet.Sum(metrics, "llm_gateway_retries_total"));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_active_requests"));

        foreach (var worker in gateway.Workers)
        {
            worker.Options.Faults.ResetAfterTokens = -1;
        }

        using var next = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true)));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.EndsWith("data: [DONE]\n\n", await next.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(2, gateway.Workers.Sum(w => w.Stats.RequestsTotal));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task Http500BeforeTheFirstByte_IsRetriedOnTheOtherWorker()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        var good = gateway.Workers[0];
        var failing = gateway.Workers[1];
        failing.Options.Faults.Http500Rate = 1.0;

        for (var i = 0; i < 4; i++)
        {
            var stream = i % 2 == 1;
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream, maxTokens: 4)));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
            if (stream)
            {
                Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal("chat.completion", JsonDocument.Parse(body).RootElement.GetProperty("object").GetString());
            }
        }

        // The simulator counts a JSON answer as completed after it flushed its last byte, which
        // the client may have read first (Content-Length): wait for the count, then it must be exact.
        await TestGateway.WaitUntilAsync(() => Task.FromResult(good.Stats.Completed >= 4), "sim-0 counted its four answers");
        Assert.Equal(4, good.Stats.Completed);
        Assert.InRange(failing.Stats.FaultsInjected, 2, 4); // round robin: at least every other request starts there
        var metrics = await gateway.MetricsAfterAsync(4);
        Assert.Equal(failing.Stats.FaultsInjected, MetricsText.Value(metrics, "llm_gateway_retries_total", "worker=\"sim-1\""));
        Assert.False(Fleet.HasSeries(metrics, "llm_gateway_retries_total", "worker=\"sim-0\""));
        Assert.Equal(4, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"500\""));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    // No retry possible (retries off, or no other worker): the worker's 500 reaches the client
    // exactly as vLLM sent it, not as a gateway 502.
    [Theory]
    [InlineData(2, 1)]
    [InlineData(1, 3)]
    public async Task Http500_WithNoRetryPossible_PassesThroughUnchanged(int workers, int maxAttempts)
    {
        await using var gateway = await TestGateway.StartAsync(workers, configure: o => o.Faults.Http500Rate = 1.0, extraToml: $"""

            [retries]
            max_attempts = {maxAttempts}
            """);
        var body = TestGateway.Chat(false);
        using var direct = new HttpClient { BaseAddress = gateway.Workers[0].BaseUri };
        using var expected = await direct.SendAsync(TestGateway.Post("v1/chat/completions", body, key: null));
        var expectedBody = await expected.Content.ReadAsStringAsync();
        var before = gateway.Workers.Sum(w => w.Stats.RequestsTotal);

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", body));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(expectedBody, await response.Content.ReadAsStringAsync());
        Assert.Equal(expected.Content.Headers.ContentType, response.Content.Headers.ContentType);
        Assert.Equal(before + 1, gateway.Workers.Sum(w => w.Stats.RequestsTotal));
        var metrics = await gateway.MetricsAfterAsync(1);
        Assert.Equal(0, Fleet.Sum(metrics, "llm_gateway_retries_total"));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"500\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"502\""));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    // Sequential requests, each answered 200 (by a retry if need be), until `done` holds; at most six.
    private static async Task SendUntilAsync(TestGateway gateway, Func<bool> done)
    {
        for (var i = 0; i < 6 && !done(); i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4)));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        Assert.True(done(), "six requests were not enough");
    }

    private static Task WaitUntilRoutableAsync(TestGateway gateway, string name) =>
        TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, name)).GetProperty("routable").GetBoolean(), name + " is routable");
}
