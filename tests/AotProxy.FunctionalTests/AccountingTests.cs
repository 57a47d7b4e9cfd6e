using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Every request that reached a worker is accounted exactly once, in /api/tenants and in the
// metrics alike: exactly when the worker reported usage, estimated (prompt estimate, one
// completion token per content chunk relayed) when the response ended without it. The client
// abort mid-stream is in ErrorPathTests.
public class AccountingTests
{
    [Fact]
    public async Task CompleteStream_IsAccountedExactly_AndNotEstimated()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 7, streamOptions: "{\"include_usage\":true}")));
        var body = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        var usageChunk = body.Split("\n\n").Single(e => e.Contains("\"usage\"", StringComparison.Ordinal))["data: ".Length..];
        using var reported = JsonDocument.Parse(usageChunk);
        var completionTokens = reported.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt64();

        var acme = await AcmeAfterAsync(gateway, 1);
        Assert.Equal(0, acme.GetProperty("estimated_requests").GetInt64());
        Assert.Equal(completionTokens, acme.GetProperty("completion_tokens").GetInt64()); // what the worker reported
        Assert.Equal(reported.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt64(), acme.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(0, acme.GetProperty("cached_prompt_tokens").GetInt64());
        Assert.Equal(0, acme.GetProperty("reasoning_tokens").GetInt64());
        var metrics = await gateway.MetricsAsync();
        Assert.True(Fleet.HasSeries(metrics, "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
        Assert.Equal(completionTokens, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
    }

    [Fact]
    public async Task StreamTheWorkerBreaksMidWay_IsAccountedOnce_AsEstimated()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.Faults.ResetAfterTokens = 3);
        using (var response = await gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 50)),
            HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(200, (int)response.StatusCode);
            await Assert.ThrowsAnyAsync<IOException>(async () => await new StreamReader(await response.Content.ReadAsStreamAsync()).ReadToEndAsync());
        }

        await Fleet.AssertNothingInFlightAsync(gateway);
        var acme = await AcmeAfterAsync(gateway, 1);
        Assert.Equal(1, acme.GetProperty("estimated_requests").GetInt64());
        Assert.Equal(3, acme.GetProperty("completion_tokens").GetInt64()); // the 3 token chunks sent before the reset
        var prompt = acme.GetProperty("prompt_tokens").GetInt64();
        Assert.True(prompt > 0, "the prompt is estimated from the body");
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
        Assert.Equal(3, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
        Assert.Equal(prompt, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"prompt\""));
        Assert.Equal(1, Fleet.Sum(metrics, "llm_gateway_requests_total"));

        // A normal stream after it adds one exact record and leaves the estimated count alone.
        gateway.Workers[0].Options.Faults.ResetAfterTokens = -1;
        using (var next = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 5))))
        {
            Assert.EndsWith("data: [DONE]\n\n", await next.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        acme = await AcmeAfterAsync(gateway, 2);
        Assert.Equal(1, acme.GetProperty("estimated_requests").GetInt64());
        Assert.InRange(acme.GetProperty("completion_tokens").GetInt64(), 3 + 1, 3 + 5);
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
    }

    [Fact]
    public async Task ClientAbortBeforeTheFirstByte_IsAccountedOnce_AsTheEstimatedPromptAlone()
    {
        // The worker has the request (and may have done its prefill) but never answers.
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.Faults.Hang = true);
        using var abort = new CancellationTokenSource();
        var sending = gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)), abort.Token);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Workers[0].Stats.RequestsTotal == 1), "the worker has the request");
        await abort.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);

        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Workers[0].Stats.Aborted == 1), "the worker saw the abort");
        await Fleet.AssertNothingInFlightAsync(gateway);
        var acme = await AcmeAfterAsync(gateway, 1);
        Assert.Equal(1, acme.GetProperty("estimated_requests").GetInt64());
        Assert.Equal(0, acme.GetProperty("completion_tokens").GetInt64());
        Assert.True(acme.GetProperty("prompt_tokens").GetInt64() > 0);
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"499\""));
        Assert.Equal(1, Fleet.Sum(metrics, "llm_gateway_requests_total"));
    }

    [Fact]
    public async Task RequestsThatNeverReachAWorker_AreCountedButNotAccounted()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        using (await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", "{\"model\":\"no-such-model\",\"messages\":[]}")))
        {
        }

        gateway.Workers[0].Options.Faults.Http500Rate = 1.0;
        using (var failed = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
        {
            Assert.Equal(500, (int)failed.StatusCode); // an upstream error answer: passed through, nothing used
        }

        // Counted in the handler's finally, after the answer's last byte went out: wait for it.
        await TestGateway.WaitUntilAsync(async () => Fleet.Sum(await gateway.MetricsAsync(), "llm_gateway_requests_total") >= 2, "both requests counted");
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(2, Fleet.Sum(metrics, "llm_gateway_requests_total"));
        var acme = Fleet.Named(await Fleet.GetJsonAsync(gateway, "/api/tenants"), "acme");
        Assert.Equal(0, acme.GetProperty("requests").GetInt64());
        Assert.Equal(0, Fleet.Sum(metrics, "llm_gateway_estimated_usage_total"));
    }

    private static Task<JsonElement> AcmeAfterAsync(TestGateway gateway, long requests) => Fleet.TenantAfterAsync(gateway, "acme", requests);
}
