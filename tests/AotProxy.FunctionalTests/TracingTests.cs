using System.Net;
using System.Text;
using AotProxy.Cli;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.FunctionalTests;

// [telemetry] otlp_endpoint through the real executable (the AOT binary in CI), in front of a
// RawWorker that keeps the request head it read, exporting to an OTLP/HTTP receiver the test runs
// on loopback: one SERVER span per request with the GenAI attributes and the stages' events, one
// CLIENT span per attempt whose ids are the worker's traceparent, a client's trace continued,
// reloads that turn tracing on and off, and a receiver that is down costing the requests nothing.
public class TracingTests
{
    private const string ClientTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    private const string ClientSpanId = "00f067aa0ba902b7";

    private static readonly string StreamBody = Fixtures.Text("openai/chat_stream_usage.sse");
    private static readonly string JsonBody = Fixtures.Text("openai/chat_nonstream.json");

    [Fact]
    public async Task Serve_AStreamAndAJsonChat_EachGiveAServerSpanAndAClientSpan_WhoseIdsTheWorkerGot_AndAClientsTraceIsContinued()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var worker = new RawWorker(n => n == 1 ? Stream() : RawReply.Of(RawWorker.Json(JsonBody)));
        await using var gateway = await StartAsync(worker, Telemetry(receiver.Endpoint));
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };

        var stream = await ChatAsync(http, worker, stream: true);
        var json = await ChatAsync(http, worker, stream: false);
        var continued = await ChatAsync(http, worker, stream: false, traceparent: $"00-{ClientTraceId}-{ClientSpanId}-01");

        // Each worker's traceparent names the attempt's CLIENT span, whose parent is the request's SERVER span.
        var spans = await receiver.WaitForAsync(s => s.Service == "aotproxy-test", 6, "3 server and 3 client spans");
        var (streamServer, streamClient) = Pair(spans, stream);
        var (jsonServer, _) = Pair(spans, json);
        var (continuedServer, _) = Pair(spans, continued);

        Assert.Equal(ClientTraceId, continued.TraceId);
        Assert.Equal(ClientSpanId, continuedServer.ParentSpanId);
        Assert.Equal(string.Empty, streamServer.ParentSpanId);
        Assert.NotEqual(streamServer.TraceId, jsonServer.TraceId);

        foreach (var (server, usage) in new[] { (streamServer, (13L, 3L)), (jsonServer, (12L, 100L)) })
        {
            Assert.Equal($"chat {TestGateway.Model}", server.Name);
            Assert.Equal(2, server.Kind);
            Assert.Equal("chat", server["gen_ai.operation.name"]);
            Assert.Equal("vllm", server["gen_ai.provider.name"]);
            Assert.Equal(TestGateway.Model, server["gen_ai.request.model"]);
            Assert.Equal(16L, server["gen_ai.request.max_tokens"]);
            Assert.Equal(usage, ((long)server["gen_ai.usage.input_tokens"]!, (long)server["gen_ai.usage.output_tokens"]!));
            Assert.Equal(200L, server["http.response.status_code"]);
            Assert.Equal("acme", server["aotproxy.tenant"]);
            Assert.Equal("raw", server["aotproxy.worker"]);
            Assert.IsType<double>(server["aotproxy.queue_ms"]);
            Assert.IsType<double>(server["aotproxy.ttft_ms"]);
            Assert.Null(server["error.type"]);
            Assert.Equal(["identify", "limit", "queue.start", "queue.admitted", "route"], server.Events.Select(e => e.Name));
        }

        Assert.Equal(3, streamClient.Kind);
        Assert.Equal("raw", streamClient["aotproxy.worker"]);
        Assert.Equal(["upstream.request_sent", "upstream.response_head", "gen_ai.first_token"], streamClient.Events.Select(e => e.Name));
        Assert.Equal(200L, streamClient.Events[1].Attributes["http.response.status_code"]);
    }

    // "vLLM continues the trace": the simulator run as vLLM with --otlp-traces-endpoint exports its
    // llm_request span as the child of the traceparent the gateway sent, to the same receiver.
    [Fact]
    public async Task Serve_ToASimulatedVllmThatExportsItsSpans_GivesOneTrace_ServerThenClientThenTheWorkersLlmRequest()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        var options = new SimulatorOptions { Name = "sim-traced", SpeedFactor = 50, OtlpTracesEndpoint = new Uri(receiver.Endpoint + "/v1/traces") };
        await using var worker = await SimulatedWorker.StartAsync(options, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance);
        var config = Path.Combine(Directory.CreateTempSubdirectory("aotproxy-tracing-").FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: Telemetry(receiver.Endpoint)));
        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };

        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 5)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await response.Content.ReadAsStringAsync();

        var vllm = Assert.Single(await receiver.WaitForAsync(s => s.Service == "vllm", 1, "the worker's llm_request span"));
        var spans = await receiver.WaitForAsync(s => s.TraceId == vllm.TraceId, 3, "the whole trace");
        var client = Assert.Single(spans, s => s.SpanId == vllm.ParentSpanId);
        var server = Assert.Single(spans, s => s.SpanId == client.ParentSpanId);
        Assert.Equal(("llm_request", 2), (vllm.Name, vllm.Kind));
        Assert.Equal(("aotproxy-test", 3, "sim-traced"), (client.Service, client.Kind, client["aotproxy.worker"]));
        Assert.Equal(("aotproxy-test", 2, string.Empty), (server.Service, server.Kind, server.ParentSpanId));
        Assert.Equal(TestGateway.Model, vllm["gen_ai.response.model"]);
        Assert.InRange((long)vllm["gen_ai.usage.completion_tokens"]!, 1, 5);
        Assert.Equal(vllm["gen_ai.usage.completion_tokens"], server["gen_ai.usage.output_tokens"]);
    }

    // `aotproxy demo --otlp-endpoint`: the gateway and its simulated workers trace to one receiver.
    [Fact]
    public async Task Demo_WithAnOtlpEndpoint_TracesFromTheGatewayIntoItsSimulatedWorker()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var demo = GatewayProcess.Start("demo", "--workers", "1", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--otlp-endpoint", receiver.Endpoint);
        await demo.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = demo.DataUri, Timeout = TimeSpan.FromSeconds(30) };

        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key: DemoCommand.DemoKey));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The demo warms its worker up first ([routing] warmup): that request carries no trace, so
        // its span is a root of its own; the client's request is the one with a parent.
        var vllm = Assert.Single(await receiver.WaitForAsync(s => s.Service == "vllm" && s.ParentSpanId.Length > 0, 1, "the demo worker's llm_request span"));
        var spans = await receiver.WaitForAsync(s => s.TraceId == vllm.TraceId, 3, "the demo's whole trace");
        var client = Assert.Single(spans, s => s.SpanId == vllm.ParentSpanId);
        Assert.Equal(("aotproxy", 3), (client.Service, client.Kind));
        Assert.Equal(2, Assert.Single(spans, s => s.SpanId == client.ParentSpanId).Kind);
    }

    [Fact]
    public async Task Reload_TurnsTracingOn_ThenOff_AndOffTheClientsTraceparentReachesTheWorkerUnchanged()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(JsonBody)));
        var config = Path.Combine(Directory.CreateTempSubdirectory("aotproxy-tracing-").FullName, "aotproxy.toml");
        await using var gateway = await StartAsync(worker, string.Empty, config);
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };
        var client = $"00-{ClientTraceId}-{ClientSpanId}-01";

        var off = await ChatAsync(http, worker, stream: false, traceparent: client);
        Assert.Equal(client, off.Raw);

        await ReloadAsync(admin, config, worker, Telemetry(receiver.Endpoint));
        var on = await ChatAsync(http, worker, stream: false, traceparent: client);
        Assert.Equal(ClientTraceId, on.TraceId);
        Assert.NotEqual(ClientSpanId, on.SpanId);
        await receiver.WaitForAsync(s => s.SpanId == on.SpanId && s.Kind == 3, 1, "the client span of the request after the reload");

        // Off again: no span is made, so the worker gets the client's own traceparent once more.
        await ReloadAsync(admin, config, worker, string.Empty);
        var offAgain = await ChatAsync(http, worker, stream: false, traceparent: client);
        Assert.Equal(client, offAgain.Raw);
    }

    [Fact]
    public async Task Serve_WithTheReceiverDown_AnswersEveryRequest_StaysHealthy_AndCountsTheSpansItCouldNotExport()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(JsonBody)));
        await using var gateway = await StartAsync(worker, Telemetry(ClosedPort()));
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        for (var i = 0; i < 5; i++)
        {
            var traced = await ChatAsync(http, worker, stream: false);
            Assert.Equal(32, traced.TraceId.Length);
        }

        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/ready")).StatusCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        double failed;
        while ((failed = MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_trace_spans_dropped_total", "reason=\"export_failed\"")) < 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "no failed export counted within 60 s");
            await Task.Delay(100);
        }

        Assert.InRange(failed, 1, 10); // a server and a client span per request, at most
        Assert.Equal(0, MetricsText.Value(await admin.GetStringAsync("/metrics"), "llm_gateway_trace_spans_exported_total"));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
    }

    private static string Telemetry(string endpoint) => $"""

        [telemetry]
        otlp_endpoint = "{endpoint}"
        service_name = "aotproxy-test"

        """;

    private static async Task<GatewayProcess> StartAsync(RawWorker worker, string telemetry, string? config = null)
    {
        config ??= Path.Combine(Directory.CreateTempSubdirectory("aotproxy-tracing-").FullName, "aotproxy.toml");
        await WriteConfigAsync(config, worker, telemetry);
        var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        return gateway;
    }

    private static Task WriteConfigAsync(string config, RawWorker worker, string telemetry) =>
        File.WriteAllTextAsync(config, TestGateway.Toml([], extra: worker.Section(TestGateway.Model) + telemetry));

    private static async Task ReloadAsync(HttpClient admin, string config, RawWorker worker, string telemetry)
    {
        await WriteConfigAsync(config, worker, telemetry);
        using var reload = await admin.PostAsync("/api/config/reload", null);
        Assert.True(reload.IsSuccessStatusCode, await reload.Content.ReadAsStringAsync());
    }

    // One chat through the gateway, answered 200; the traceparent the worker got for it.
    private static async Task<Traceparent> ChatAsync(HttpClient http, RawWorker worker, bool stream, string? traceparent = null)
    {
        using var request = TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream));
        if (traceparent is not null)
        {
            request.Headers.Add("traceparent", traceparent);
        }

        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await response.Content.ReadAsStringAsync();
        var head = Encoding.ASCII.GetString(worker.LastHead!);
        var values = head.Split("\r\n").Where(l => l.StartsWith("traceparent:", StringComparison.OrdinalIgnoreCase)).Select(l => l[12..].Trim()).ToList();
        return Traceparent.Parse(Assert.Single(values));
    }

    // The CLIENT span the worker's traceparent names, and the SERVER span that is its parent.
    private static (OtlpSpan Server, OtlpSpan Client) Pair(List<OtlpSpan> spans, Traceparent sent)
    {
        var client = Assert.Single(spans, s => s.SpanId == sent.SpanId);
        Assert.Equal((3, sent.TraceId), (client.Kind, client.TraceId));
        var server = Assert.Single(spans, s => s.SpanId == client.ParentSpanId);
        Assert.Equal((2, sent.TraceId), (server.Kind, server.TraceId));
        return (server, client);
    }

    private static RawReply Stream() =>
        RawReply.Of(Encoding.UTF8.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{Encoding.UTF8.GetByteCount(StreamBody):x}\r\n{StreamBody}\r\n0\r\n\r\n"));

    private static string ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    private sealed record Traceparent(string Raw, string TraceId, string SpanId)
    {
        public static Traceparent Parse(string raw)
        {
            var parts = raw.Split('-');
            Assert.Equal(4, parts.Length);
            return new Traceparent(raw, parts[1], parts[2]);
        }
    }
}
