using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// [forwarding] stream_idle_timeout through the real binary: a worker silent before a stream's
// first event is failed over; one silent after it ends the stream with an error event that the
// official openai npm client raises, carrying our message; [[models]] sets the window per model.
public class StreamIdleTimeoutTests
{
    private const string Window = "stream_idle_timeout = \"1s\"";

    [Fact]
    public async Task StallBeforeTheFirstToken_TheAnswerComesFromTheOtherWorker()
    {
        // sim-0 holds one sequence, taken from outside: a stream sent to it gets its headers at
        // once (as vLLM sends them while queued) and then nothing.
        await using var gateway = await BinaryGateway.StartAsync(2, forwardingToml: Window, configure: o =>
        {
            if (o.Name == "sim-0")
            {
                o.MaxNumSeqs = 1;
            }
        });
        await using var busy = await BusyWorker.FillAsync(gateway.Workers[0]);

        for (var i = 0; i < 2; i++) // round robin: one of the two starts on sim-0
        {
            using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4)));
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
            Assert.DoesNotContain("\"error\"", body, StringComparison.Ordinal);
        }

        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        Assert.True(MetricsText.Value(metrics, "llm_gateway_retries_total", "worker=\"sim-0\"") >= 1, metrics);
        Assert.True(MetricsText.Value(metrics, "llm_circuit_breaker_failures_total", "worker=\"sim-0\"") >= 1); // a silent worker is unhealthy
        Assert.Equal(0, gateway.Workers[1].Stats.Running + gateway.Workers[1].Stats.Waiting);
    }

    [Fact]
    public async Task StallAfterTheFirstToken_TheOpenAiClientRaisesOurError_AndTheUsageIsEstimatedOnce()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, forwardingToml: Window, configure: o => o.Faults.InterTokenDelay = TimeSpan.FromSeconds(30));

        var result = await NodeChat.StreamAsync(gateway, maxTokens: 4);

        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.True(result.GetProperty("apiError").GetBoolean(), result.ToString()); // openai-node's APIError, not a network error
        Assert.Equal("stream_idle_timeout", result.GetProperty("code").GetString());
        Assert.Contains("The worker sent nothing for 1s (stream_idle_timeout)", result.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.NotEqual("", result.GetProperty("text").GetString()); // the first token did arrive

        // Accounted as a stream cut, once; its slot came back. The request is accounted (the
        // tenant's "requests") before its finally counts it in llm_gateway_requests_total: wait
        // for that count, the last thing the gateway does with it.
        var metrics = await Fleet.MetricsAfterAsync(gateway.Admin, 1);
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"200\""));
        await TestGateway.WaitUntilAsync(async () =>
        {
            using var workers = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/workers"));
            var w = workers.RootElement[0];
            return w.GetProperty("in_flight").GetInt32() == 0 && w.GetProperty("slots_taken").GetInt32() == 0;
        }, "the worker's slot is free again");
        Assert.Equal(1, Tenant(await gateway.Admin.GetStringAsync("/api/tenants")).GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task AModelsOwnLongerWindow_LetsItsSlowStreamFinish()
    {
        await using var gateway = await BinaryGateway.StartAsync(
            1,
            forwardingToml: Window,
            extraToml: $"""

                [[models]]
                name = "{TestGateway.Model}"
                stream_idle_timeout = "20s"
                """,
            configure: o => o.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(1500));

        var result = await NodeChat.StreamAsync(gateway, maxTokens: 3);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.NotEqual("", result.GetProperty("text").GetString());
    }

    private static JsonElement Tenant(string tenants)
    {
        using var json = JsonDocument.Parse(tenants);
        return json.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "acme").Clone();
    }
}
