using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Hosting;
using AotProxy.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// What reaches the worker: its own api_key (never the client's), the request id, the client's
// ordinary headers, and no hop-by-hop headers. The worker here records what it got and answers
// with a real vLLM body from the fixtures.
public class HeaderForwardingTests
{
    private static readonly byte[] VllmBody = File.ReadAllBytes(Path.Combine(Fixtures.Directory, "openai", "chat_nonstream.json"));

    [Fact]
    public async Task Request_ReachesTheWorkerWithItsOwnKeyAndWithoutHopByHopHeaders()
    {
        var recorder = new Recorder();
        await using var worker = await recorder.StartAsync();
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: $"""

            [[workers]]
            name = "recorder"
            url = "{worker.BaseUri}prefix/"
            models = ["{TestGateway.Model}"]
            api_key = "sk-worker-secret"
            """);

        using var request = TestGateway.Post("v1/chat/completions?trace=1", TestGateway.Chat(false), requestId: "rid-42");
        request.Headers.TryAddWithoutValidation("x-custom", "kept");
        request.Headers.TryAddWithoutValidation("Keep-Alive", "timeout=5");
        request.Headers.TryAddWithoutValidation("Proxy-Authorization", "Basic Zm9vOmJhcg==");
        request.Headers.TryAddWithoutValidation("Upgrade", "websocket");
        request.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip");
        request.Headers.TryAddWithoutValidation("x-tenant", "limited");
        request.Headers.TryAddWithoutValidation("x-customer-tier", "gold");
        request.Headers.TryAddWithoutValidation("x-priority", "0");
        using var response = await gateway.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(VllmBody, await response.Content.ReadAsByteArrayAsync());
        var seen = recorder.Headers!;
        Assert.Equal("/prefix/v1/chat/completions?trace=1", recorder.Path);
        Assert.Equal("Bearer sk-worker-secret", seen["Authorization"].ToString());
        Assert.Equal("rid-42", seen["x-request-id"].ToString());
        Assert.Equal("kept", seen["x-custom"].ToString());
        Assert.Equal(worker.BaseUri.Authority, seen["Host"].ToString());
        // The trusted identity headers neither: whatever sits behind a worker must not learn to trust them.
        foreach (var hopByHop in new[] { "Keep-Alive", "Proxy-Authorization", "Upgrade", "Accept-Encoding", "Proxy-Connection", "TE", "x-tenant", "x-customer-tier", "x-priority" })
        {
            Assert.False(seen.ContainsKey(hopByHop), hopByHop + " was forwarded");
        }

        var metrics = await gateway.MetricsAsync();
        Assert.Equal(12, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"prompt\""));
        Assert.Equal(100, MetricsText.Value(metrics, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"completion\""));
    }

    [Fact]
    public async Task Request_WithoutWorkerKey_SendsNoAuthorizationUpstream()
    {
        var recorder = new Recorder();
        await using var worker = await recorder.StartAsync();
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: $"""

            [[workers]]
            name = "recorder"
            url = "{worker.BaseUri}"
            models = ["{TestGateway.Model}"]
            """);

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(recorder.Headers!.ContainsKey("Authorization"));
    }

    // A worker that records the last POST (the gateway's own GET /metrics scrapes and health
    // probes come at any time, also between the request and the asserts) and answers every
    // request with a real vLLM body.
    private sealed class Recorder
    {
        public HeaderDictionary? Headers { get; private set; }

        public string? Path { get; private set; }

        public Task<KestrelListener> StartAsync() => KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), async context =>
        {
            context.Response.ContentType = "application/json";
            if (!HttpMethods.IsPost(context.Request.Method))
            {
                await context.Response.Body.WriteAsync(VllmBody);
                return;
            }

            // HeaderDictionary's own storage compares names case-insensitively, as HTTP does.
            var headers = new HeaderDictionary();
            foreach (var header in context.Request.Headers)
            {
                headers[header.Key] = header.Value;
            }

            Headers = headers;
            Path = context.Request.Path + context.Request.QueryString;
            await context.Response.Body.WriteAsync(VllmBody);
        }, NullLoggerFactory.Instance);
    }
}
