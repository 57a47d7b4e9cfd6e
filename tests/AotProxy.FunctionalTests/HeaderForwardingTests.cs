using System.Net;
using System.Net.Sockets;
using System.Text;
using AotProxy.FunctionalTests.Support;
using AotProxy.Hosting;
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

        var metrics = await gateway.MetricsAfterAsync(1);
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

    [Fact]
    public async Task Request_FromAnUntrustedClient_ReachesTheWorkerWithOnlyTheGatewaysForwardedFor()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(Encoding.UTF8.GetString(VllmBody))));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        var response = await SendRawAsync(gateway.Host.DataUri, """
            X-Forwarded-For: 203.0.113.9
            Forwarded: for=203.0.113.9;proto=https
            X-Real-IP: 203.0.113.9
            X-Forwarded-Host: evil.example
            X-Forwarded-Proto: https
            """);

        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        var seen = HeadLines(worker.LastHead!);
        Assert.Equal(["127.0.0.1"], Values(seen, "X-Forwarded-For"));
        foreach (var spoofed in new[] { "Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto" })
        {
            Assert.Empty(Values(seen, spoofed));
        }
    }

    [Fact]
    public async Task Request_FromATrustedProxy_GetsThePeerAppendedToItsForwardedFor()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(Encoding.UTF8.GetString(VllmBody))));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model) + """

            [auth]
            trusted_sources = ["127.0.0.0/8"]
            """);

        var response = await SendRawAsync(gateway.Host.DataUri, """
            X-Forwarded-For: 203.0.113.9
            X-Forwarded-For: 10.1.1.1, 10.2.2.2
            Forwarded: for=203.0.113.9;proto=https
            X-Real-IP: 203.0.113.9
            X-Forwarded-Proto: https
            """);

        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        var seen = HeadLines(worker.LastHead!);
        Assert.Equal(["203.0.113.9, 10.1.1.1, 10.2.2.2, 127.0.0.1"], Values(seen, "X-Forwarded-For"));
        Assert.Equal(["for=203.0.113.9;proto=https"], Values(seen, "Forwarded"));
        Assert.Equal(["203.0.113.9"], Values(seen, "X-Real-IP"));
        Assert.Equal(["https"], Values(seen, "X-Forwarded-Proto"));
    }

    [Fact]
    public async Task Request_HeadersTheConnectionHeaderNames_AreNotForwarded()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(Encoding.UTF8.GetString(VllmBody))));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        var response = await SendRawAsync(gateway.Host.DataUri, """
            X-Hop-Secret: s3cret
            X-Other-Hop: 1
            X-Kept: k
            """, connection: "X-Hop-Secret,x-other-hop");

        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        var seen = HeadLines(worker.LastHead!);
        Assert.Equal(["k"], Values(seen, "X-Kept"));
        Assert.Empty(Values(seen, "X-Hop-Secret"));
        Assert.Empty(Values(seen, "X-Other-Hop"));
        Assert.Empty(Values(seen, "Connection"));
    }

    [Fact]
    public async Task Request_NonAsciiHeaderValues_ReachTheWorkerByteForByte()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(Encoding.UTF8.GetString(VllmBody))));
        await using var gateway = await TestGateway.StartAsync(workers: 0, extraToml: worker.Section(TestGateway.Model));

        var response = await SendRawAsync(gateway.Host.DataUri, "X-Note: café\r\nX-Price: 5 €, 日本");

        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        var head = worker.LastHead!;
        Assert.True(Contains(head, Encoding.UTF8.GetBytes("\r\nX-Note: café\r\n")), Encoding.Latin1.GetString(head));
        Assert.True(Contains(head, Encoding.UTF8.GetBytes("\r\nX-Price: 5 €, 日本\r\n")), Encoding.Latin1.GetString(head));
    }

    // One HTTP/1.1 request written on a socket as is (HttpClient would re-encode or refuse some of
    // these headers): the chat body, the test key, `extraHeaders` (one per line, UTF-8), then the
    // answer's head and its Content-Length body. (Kestrel hands a Connection header that holds
    // exactly one of close, keep-alive and upgrade to the application as that token alone, so a
    // test that names headers in it names nothing else.)
    private static async Task<string> SendRawAsync(Uri dataUri, string extraHeaders, string connection = "close")
    {
        var body = Encoding.UTF8.GetBytes(TestGateway.Chat(false));
        var head = "POST /v1/chat/completions HTTP/1.1\r\n"
            + $"Host: {dataUri.Authority}\r\nAuthorization: Bearer {TestGateway.Key}\r\nContent-Type: application/json\r\n"
            + $"Content-Length: {body.Length}\r\nConnection: {connection}\r\n"
            + string.Concat(extraHeaders.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r') + "\r\n"))
            + "\r\n";
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new TcpClient();
        await client.ConnectAsync(dataUri.Host, dataUri.Port, timeout.Token);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(head).Concat(body).ToArray(), timeout.Token);
        var answer = new List<byte>();
        var buffer = new byte[16 * 1024];
        int headEnd, total = int.MaxValue;
        while (answer.Count < total)
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            answer.AddRange(buffer.AsSpan(0, read));
            if (total == int.MaxValue && (headEnd = answer.ToArray().AsSpan().IndexOf("\r\n\r\n"u8)) >= 0)
            {
                var length = Encoding.ASCII.GetString(answer.ToArray(), 0, headEnd).Split("\r\n")
                    .Select(l => l.Split(':', 2)).Single(p => p[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))[1];
                total = headEnd + 4 + int.Parse(length, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return Encoding.UTF8.GetString([.. answer]);
    }

    private static List<(string Name, string Value)> HeadLines(byte[] head) =>
        [.. Encoding.UTF8.GetString(head).Split("\r\n").Skip(1).Where(l => l.Length > 0).Select(l => l.Split(':', 2)).Select(p => (p[0], p[1].Trim()))];

    private static string[] Values(List<(string Name, string Value)> lines, string name) =>
        [.. lines.Where(l => l.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(l => l.Value)];

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;

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
