using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Push-back is not failure: a worker whose own queue is full answers 503 (vLLM, here the
// simulator's --max-num-queued-reqs), a hosted API over its limit 429. Both are retried on another
// worker while one can take the request, and neither counts against the worker's breaker.
public class PushBackTests
{
    private const string Breaker = """

        [circuit_breaker]
        failure_threshold = 2
        """;

    [Fact]
    public async Task Burst_AFullWorkersPushBacksGoElsewhere_NoClient503_ItsBreakerStaysClosed()
    {
        // sim-0 runs four sequences and queues none; streams from outside the gateway fill it, so
        // the four slots the gateway has on it (its max_concurrency) all meet a full worker.
        await using var gateway = await BinaryGateway.StartAsync(2, extraToml: Breaker, configure: o =>
        {
            if (o.Name == "sim-0")
            {
                o.MaxNumSeqs = 4;
                o.MaxNumQueuedReqs = 0;
            }
        });
        var full = gateway.Workers[0];
        await using var busy = await BusyWorker.FillAsync(full, count: 4);

        // Round robin (the harness's strategy) sends every other request to sim-0 whatever its load.
        var answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            using var request = TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: i % 2 == 0, maxTokens: 4));
            using var response = await gateway.Data.SendAsync(request);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));

        Assert.All(answers, a => Assert.True(a.Item1 == 200, $"{a.Item1}: {a.Item2}"));
        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        var pushBacks = MetricsText.Value(metrics, "llm_worker_push_backs_total", "worker=\"sim-0\"", "status=\"503\"");
        Assert.True(pushBacks >= 2, $"sim-0 pushed back {pushBacks} times:\n{metrics}"); // at least the breaker's threshold
        Assert.Equal(full.Stats.QueueFull, pushBacks);  // every 503 sim-0 gave was counted, and retried
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_state", "worker=\"sim-0\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"sim-0\""));
        Assert.Equal(pushBacks, MetricsText.Value(metrics, "llm_gateway_retries_total", "worker=\"sim-0\""));
        using var stats = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/routing/stats"));
        var sim0 = stats.RootElement.GetProperty("workers").EnumerateArray().Single(w => w.GetProperty("name").GetString() == "sim-0");
        Assert.Equal((long)pushBacks, sim0.GetProperty("push_backs").GetInt64());
        Assert.False(sim0.GetProperty("warming").GetBoolean());
    }

    [Fact]
    public async Task NoOtherWorker_TheClientGetsTheWorkers503Unchanged_AndNothingIsLeaked()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => { o.MaxNumSeqs = 1; o.MaxNumQueuedReqs = 0; });
        var worker = gateway.Workers[0];
        await using var busy = await BusyWorker.FillAsync(worker);
        using var direct = new HttpClient { BaseAddress = worker.BaseUri };
        using var directResponse = await direct.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key: null));
        var vllmBody = await directResponse.Content.ReadAsStringAsync();

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(vllmBody, await response.Content.ReadAsStringAsync());
        Assert.Contains("\"type\":\"ServiceUnavailableError\"", vllmBody, StringComparison.Ordinal);
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_worker_push_backs_total", "worker=\"sim-0\"", "status=\"503\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"sim-0\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"503\""));
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task HostedApi429_IsRetriedOnTheOtherWorker_AndIsNoBreakerFailure()
    {
        // sim-0 is a hosted API allowing one request a minute: its second one is a 429 with retry-after.
        await using var gateway = await TestGateway.StartAsync(workers: 2, extraToml: Breaker, configure: o =>
        {
            if (o.Name == "sim-0")
            {
                o.RequestsPerMinute = 1;
            }
        });

        for (var i = 0; i < 8; i++)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4)));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        var metrics = await gateway.MetricsAsync();
        var pushBacks = MetricsText.Value(metrics, "llm_worker_push_backs_total", "worker=\"sim-0\"", "status=\"429\"");
        Assert.Equal(gateway.Workers[0].Stats.RateLimited, pushBacks);
        Assert.True(pushBacks >= 2, $"sim-0 pushed back {pushBacks} times");
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_state", "worker=\"sim-0\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"sim-0\""));
    }
}
