using System.Diagnostics;
using System.Text;
using AotProxy.Configuration;
using AotProxy.Http;
using AotProxy.Tests.Ledger;
using AotProxy.Tests.Support;
using AotProxy.Tracing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Tracing;

// The spans a request makes, in process: the data plane as GatewayHost wires it, a loopback worker
// that keeps each request head it read, and a listener on the gateway's source standing in for
// the OTel SDK (TraceExportTests runs the SDK's own sampler).
[Collection(nameof(SpanListenerGroup))]
public sealed class RequestTraceTests : IDisposable
{
    private const string Key = "sk-test-trace";
    private const string Model = "m";
    private const string ClientTraceId = "0af7651916cd43dd8448eb211c80319c";
    private const string ClientSpanId = "b7ad6b7169203331";

    private static readonly string Json = Fixtures.Text("openai/chat_nonstream.json");

    private readonly LedgerFile _file = new();

    public void Dispose() => _file.Dispose();

    [Fact]
    public async Task AChat_GivesAServerSpanWithTheGenAiAttributesAndEachStagesEvent_AndAClientSpanWhoseIdsTheWorkerGets()
    {
        using var spans = new SpanRecorder();
        var heads = await ServeAsync(ChatContext.Create(Key, "r1", Model));

        var server = spans.Single(ActivityKind.Server);
        Assert.Equal("chat m", server.DisplayName);
        Assert.Equal(default, server.ParentSpanId);
        Assert.Equal("chat", server.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("vllm", server.GetTagItem("gen_ai.provider.name"));
        Assert.Equal(Model, server.GetTagItem("gen_ai.request.model"));
        Assert.Equal(8, server.GetTagItem("gen_ai.request.max_tokens"));
        Assert.Equal(12L, server.GetTagItem("gen_ai.usage.input_tokens"));
        Assert.Equal(100L, server.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.Equal(200, server.GetTagItem("http.response.status_code"));
        Assert.Equal("acme", server.GetTagItem("aotproxy.tenant"));
        Assert.Equal("default", server.GetTagItem("aotproxy.class"));
        Assert.Equal("w", server.GetTagItem("aotproxy.worker"));
        Assert.IsType<double>(server.GetTagItem("aotproxy.queue_ms"));
        Assert.IsType<double>(server.GetTagItem("aotproxy.ttft_ms"));
        Assert.Null(server.GetTagItem("error.type"));
        Assert.Equal(["identify", "limit", "queue.start", "queue.admitted", "route"], server.Events.Select(e => e.Name));
        Assert.Equal("w", server.Events.Last().Tags.Single(t => t.Key == "aotproxy.worker").Value);

        var client = spans.Single(ActivityKind.Client);
        Assert.Equal((server.TraceId, server.SpanId), (client.TraceId, client.ParentSpanId));
        Assert.Equal("chat m", client.DisplayName);
        Assert.Equal(200, client.GetTagItem("http.response.status_code"));
        Assert.Equal("127.0.0.1", client.GetTagItem("server.address"));
        Assert.Equal(["upstream.request_sent", "upstream.response_head", "gen_ai.first_token"], client.Events.Select(e => e.Name));

        // The worker's parent is the attempt's span, sampled.
        Assert.Equal($"00-{client.TraceId}-{client.SpanId}-01", Assert.Single(Header(heads[0], "traceparent")));
        Assert.Empty(Header(heads[0], "tracestate"));
    }

    [Fact]
    public async Task AClientsTraceparent_MakesTheRequestSpanItsChild_AndItsTracestateGoesOnToTheWorker()
    {
        using var spans = new SpanRecorder(sampled: false);
        var context = ChatContext.Create(Key, "r2", Model);
        context.Request.Headers.TraceParent = $"00-{ClientTraceId}-{ClientSpanId}-01";
        context.Request.Headers.TraceState = "vendor=abc";
        var heads = await ServeAsync(context);

        var server = spans.Single(ActivityKind.Server);
        Assert.Equal(ClientTraceId, server.TraceId.ToHexString());
        Assert.Equal(ClientSpanId, server.ParentSpanId.ToHexString());
        Assert.True(server.Recorded, "the client's sampled flag decides");
        var client = spans.Single(ActivityKind.Client);
        Assert.Equal([$"00-{ClientTraceId}-{client.SpanId}-01"], Header(heads[0], "traceparent"));
        Assert.Equal(["vendor=abc"], Header(heads[0], "tracestate"));
    }

    // The SDK makes no child of a span it did not sample: the worker gets the request span's ids,
    // flag 00, so that a vLLM with a parent-based sampler does not record it either.
    [Fact]
    public async Task ASpanSampledOut_RecordsNoAttributes_ButTheWorkerStillGetsTheTraceWithItsFlagOff()
    {
        using var spans = new SpanRecorder(sampled: false);
        var heads = await ServeAsync(ChatContext.Create(Key, "r3", Model));

        var server = spans.Single(ActivityKind.Server);
        Assert.False(server.Recorded);
        Assert.Empty(server.TagObjects);
        Assert.Empty(server.Events);
        Assert.DoesNotContain(spans.Stopped, span => span.Kind == ActivityKind.Client);
        Assert.Equal([$"00-{server.TraceId}-{server.SpanId}-00"], Header(heads[0], "traceparent"));
    }

    // Off in the request's snapshot: no span, even while a listener (a provider a reload replaced,
    // still flushing) listens; on without a listener: none either.
    [Fact]
    public async Task TracingOff_MakesNoSpan_AndTheClientsTraceContextReachesTheWorkerUnchanged()
    {
        var context = ChatContext.Create(Key, "r4", Model);
        context.Request.Headers.TraceParent = $"00-{ClientTraceId}-{ClientSpanId}-01";
        context.Request.Headers.TraceState = "vendor=abc";
        Assert.Null(RequestTrace.Start(context, EndpointKind.ChatCompletions, Tracing));

        List<string> heads;
        using (var spans = new SpanRecorder())
        {
            Assert.Null(RequestTrace.Start(context, EndpointKind.ChatCompletions, TelemetryModel.Default));
            heads = await ServeAsync(context, tracing: false);
            Assert.Empty(spans.Stopped);
        }

        Assert.Equal([$"00-{ClientTraceId}-{ClientSpanId}-01"], Header(heads[0], "traceparent"));
        Assert.Equal(["vendor=abc"], Header(heads[0], "tracestate"));
        Assert.Null(Activity.Current);
    }

    [Fact]
    public async Task ARefusedRequest_EndsItsSpanWithTheStatusAndErrorType_AndMakesNoClientSpan()
    {
        using var spans = new SpanRecorder();
        var context = ChatContext.Create(Key, "r5", "not-served");
        await ServeAsync(context, admitted: false);

        var server = spans.Single(ActivityKind.Server);
        Assert.Equal("chat not-served", server.DisplayName);
        Assert.Equal(404, server.GetTagItem("http.response.status_code"));
        Assert.Equal("model_not_found", server.GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Unset, server.Status);
        Assert.DoesNotContain(spans.Stopped, span => span.Kind == ActivityKind.Client);
    }

    // The OTel SDK's own parent-based sampler, through TraceExport: at ratio 0 a new trace is not
    // recorded (the worker still gets its ids, flag 00), a client's sampled trace is.
    [Fact]
    public async Task TheSdksSampler_AtRatioZero_RecordsNoNewTrace_ButFollowsAClientsSampledFlag()
    {
        await using (var export = new TraceExport(new TraceTelemetry(Prometheus.Metrics.NewCustomRegistry()), NullLogger.Instance))
        {
            export.Apply(TelemetryModel.Default with { OtlpTraces = LoopbackTcpServer.ClosedPortUrl("/v1/traces"), SampleRatio = 0 });
            Assert.True(export.IsOn);

            var fresh = await ServeAsync(ChatContext.Create(Key, "r6", Model));
            Assert.EndsWith("-00", Assert.Single(Header(fresh[0], "traceparent")));

            var context = ChatContext.Create(Key, "r7", Model);
            context.Request.Headers.TraceParent = $"00-{ClientTraceId}-{ClientSpanId}-01";
            var continued = await ServeAsync(context);
            var traceparent = Assert.Single(Header(continued[0], "traceparent"));
            Assert.StartsWith($"00-{ClientTraceId}-", traceparent);
            Assert.EndsWith("-01", traceparent);
        }

        Assert.False(GatewayTracing.Source.HasListeners());
    }

    // Reloads: an endpoint set starts the export, the same keys again change nothing, other keys
    // rebuild it, and clearing the endpoint stops it: nothing listens, spans cost nothing again.
    [Fact]
    public async Task TraceExport_Apply_StartsRebuildsAndStopsListening()
    {
        await using var export = new TraceExport(new TraceTelemetry(Prometheus.Metrics.NewCustomRegistry()), NullLogger.Instance);
        export.Apply(TelemetryModel.Default);
        Assert.False(export.IsOn);
        Assert.False(GatewayTracing.Source.HasListeners());

        var on = TelemetryModel.Default with { OtlpTraces = LoopbackTcpServer.ClosedPortUrl("/v1/traces") };
        export.Apply(on);
        Assert.True(GatewayTracing.Source.HasListeners());
        var first = export.Retired;
        export.Apply(on with { MaxTenantSeries = 5 });
        Assert.Same(first, export.Retired);

        export.Apply(on with { SampleRatio = 0.5 });
        Assert.NotSame(first, export.Retired);
        await export.Retired.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(GatewayTracing.Source.HasListeners(), "the rebuilt provider listens");

        export.Apply(TelemetryModel.Default);
        Assert.False(export.IsOn);
        await export.Retired.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(GatewayTracing.Source.HasListeners());
    }

    // One request through the data plane to a worker that answers `Json`; the request heads it read.
    private async Task<List<string>> ServeAsync(HttpContext context, bool admitted = true, bool tracing = true)
    {
        var heads = new List<string>();
        await using var worker = LoopbackTcpServer.KeepAlive(async (request, stream, ct) =>
        {
            lock (heads)
            {
                heads.Add(request.Head);
            }

            await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(Json)}\r\n\r\n{Json}", ct);
            return true;
        });
        await using var plane = DataPlane.Start(Snapshot(worker.Url("/").ToString(), tracing), Random.Shared, TimeProvider.System);
        await plane.Handler.HandleAsync(context);
        if (admitted)
        {
            plane.AssertReleased();
        }

        return heads;
    }

    private static string[] Header(string head, string name) =>
        [.. head.Split("\r\n").Where(line => line.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)).Select(line => line[(name.Length + 1)..].Trim())];

    // Tracing on in the config ([telemetry] otlp_endpoint set); the listener or the SDK decides the rest.
    private static TelemetryModel Tracing => TelemetryModel.Default with { OtlpTraces = LoopbackTcpServer.ClosedPortUrl("/v1/traces") };

    private GatewaySnapshot Snapshot(string workerUrl, bool tracing) =>
        DataPlane.Snapshot(_file.Path, workerUrl, Key, Model, $"""

            [telemetry]
            otlp_endpoint = "{(tracing ? Tracing.OtlpTraces!.GetLeftPart(UriPartial.Authority) : "")}"
            """);
}
