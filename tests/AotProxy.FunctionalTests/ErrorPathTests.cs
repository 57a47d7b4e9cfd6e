using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Bad input and broken upstreams: each gets the documented answer, and costs nothing else
// (the process keeps serving, nothing stays in flight).
public class ErrorPathTests
{
    [Theory]
    [InlineData("{\"model\":", 400, "invalid_json")]
    [InlineData("[1]", 400, "invalid_json")]
    [InlineData("{\"messages\":[]}", 400, "missing_required_parameter")]
    [InlineData("{\"model\":\"no-such-model\",\"messages\":[]}", 404, "model_not_found")]
    public async Task BadRequests_GetOpenAiShapedErrors(string body, int status, string code)
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", body));
        await AssertErrorAsync(response, status, code);
        await AssertNothingInFlightAsync(gateway);
        Assert.DoesNotContain("no-such-model", await gateway.MetricsAsync(), StringComparison.Ordinal); // no series from made-up names
    }

    [Fact]
    public async Task MissingKey_Is401_WrongMethod405_UnknownPath404()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        await AssertErrorAsync(await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key: null)), 401, "invalid_api_key");
        await AssertErrorAsync(await gateway.Client.GetAsync("v1/chat/completions"), 405, "method_not_allowed");
        await AssertErrorAsync(await gateway.Client.GetAsync("v2/anything"), 404, "not_found");
        Assert.Equal("ok", await gateway.Client.GetStringAsync("health"));
    }

    [Fact]
    public async Task OversizeBody_Is413_WithContentLengthAndChunked()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);
        var big = TestGateway.Chat(false, content: new string('a', 70_000));

        await AssertErrorAsync(await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", big)), 413, "request_too_large");

        using var chunked = TestGateway.Post("v1/chat/completions", "");
        chunked.Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.TransferEncodingChunked = true;
        await AssertErrorAsync(await gateway.Client.SendAsync(chunked), 413, "request_too_large");
        await AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task Upstream500_PassesThroughUnchanged()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.Faults.Http500Rate = 1.0);
        using var direct = new HttpClient { BaseAddress = gateway.Workers[0].BaseUri };
        var body = TestGateway.Chat(false);

        var expected = await (await direct.SendAsync(TestGateway.Post("v1/chat/completions", body, key: null))).Content.ReadAsStringAsync();
        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", body));

        Assert.Equal(500, (int)response.StatusCode);
        Assert.Equal(expected, await response.Content.ReadAsStringAsync());
        await AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task UpstreamResetMidStream_CutsTheClientStreamAndTheGatewayStaysHealthy()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.Faults.ResetAfterTokens = 3);
        using var response = await gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 50)),
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);

        var stream = await response.Content.ReadAsStreamAsync();
        await Assert.ThrowsAnyAsync<IOException>(() => new StreamReader(stream).ReadToEndAsync());

        await AssertNothingInFlightAsync(gateway);
        gateway.Workers[0].Options.Faults.ResetAfterTokens = -1;
        using var next = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true)));
        Assert.EndsWith("data: [DONE]\n\n", await next.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientDisconnectMidStream_CancelsTheUpstreamRequest_AndIsAccountedOnceAsEstimated()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50));
        var response = await gateway.Client.SendAsync(
            TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 500)),
            HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var tokens = 0;
        while (tokens < 3 && await reader.ReadLineAsync() is { } line)
        {
            tokens += line.Contains("\"content\":\"", StringComparison.Ordinal) && !line.Contains("\"content\":\"\"", StringComparison.Ordinal) ? 1 : 0;
        }

        response.Dispose(); // the client goes away mid-stream, after 3 tokens

        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Workers[0].Stats.Aborted == 1), "the worker saw the abort");
        Assert.Equal(0, gateway.Workers[0].Stats.Running);
        await AssertNothingInFlightAsync(gateway);
        var metrics = await gateway.MetricsAfterAsync(1);
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"499\""));
        Assert.Equal(1, Fleet.Sum(metrics, "llm_gateway_requests_total"));

        // Accounted once, estimated: at least the tokens the client read, never the planned 500.
        var acme = await Fleet.TenantAfterAsync(gateway, "acme", 1);
        Assert.Equal(1, acme.GetProperty("estimated_requests").GetInt64());
        var completion = acme.GetProperty("completion_tokens").GetInt64();
        Assert.InRange(completion, 3, 499);
        Assert.True(acme.GetProperty("prompt_tokens").GetInt64() > 0);
        metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_estimated_usage_total", "tenant=\"acme\""));
        Assert.Equal(completion, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
    }

    [Fact]
    public async Task UnreachableWorker_Is502()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var closedPort = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: $"""

            [[workers]]
            name = "dead"
            url = "http://127.0.0.1:{closedPort}"
            models = ["{TestGateway.Model}"]
            """);

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

        await AssertErrorAsync(response, 502, "upstream_error");
        await AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task HangingWorker_TimesOutWith504AfterTheActivityTimeout()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.Faults.Hang = true, activityTimeout: "500ms");
        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
        await AssertErrorAsync(response, 504, "upstream_timeout");
        await AssertNothingInFlightAsync(gateway);
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, int status, string code)
    {
        using (response)
        {
            Assert.Equal(status, (int)response.StatusCode);
            Assert.True(response.Headers.Contains("x-request-id"));
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var error = json.RootElement.GetProperty("error");
            Assert.Equal(code, error.GetProperty("code").GetString());
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
            Assert.True(error.TryGetProperty("type", out _));
            Assert.True(error.TryGetProperty("param", out _));
        }
    }

    private static async Task AssertNothingInFlightAsync(TestGateway gateway)
    {
        await TestGateway.WaitUntilAsync(async () =>
        {
            var metrics = await gateway.MetricsAsync();
            return MetricsText.Value(metrics, "llm_gateway_active_requests") == 0
                && gateway.Host.State.Current.Workers.Workers.All(w => w.InFlight == 0);
        }, "nothing is in flight");
    }
}
