using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Issue 20, "charge as tokens stream", against the real executable (the AOT binary in CI): a
// stream's tenant and class counters in /api/queues move with every content chunk relayed, past
// the prompt charge while the stream still runs, and end at exactly input_weight x prompt +
// output_weight x completion of the worker's usage; a client that leaves mid-stream is charged
// what was relayed. A RawWorker streams known usage and holds the rest of the stream on a gate,
// so the test reads the counters at a known point of the stream.
public class StreamedChargeTests
{
    private const string Key = "sk-test-streamed-charge";
    private const double InputWeight = 1.0;
    private const double OutputWeight = 3.0;
    private const int TenantWeight = 2;
    private const int ClassWeight = 4;

    // 400 bytes of prompt text: an estimate of 100 tokens (4 bytes each), which the grant charges.
    private const int PromptEstimate = 100;
    private static readonly string Prompt = new('x', 4 * PromptEstimate);

    // What the worker reports: fewer prompt tokens than the estimate (a refund), and more
    // completion tokens than content chunks (vLLM sends several tokens per chunk at times).
    private const int PromptTokens = 37;
    private const int CompletionTokens = 30;
    private const int ChunksBeforeGate = 4;
    private const int ChunksAfterGate = 6;
    private const int MaxTokens = 64;

    // Mid-stream: the grant's prompt charge, and output_weight per chunk relayed so far (the
    // forwarder charges a chunk before it flushes it to the client).
    [Fact]
    public Task Stream_MovesTheCountersChunkByChunk_AndSettlesToExactlyTheWeightedUsage() =>
        StreamAndSettleAsync(scheduler: "", expectedMid: (InputWeight * PromptEstimate) + (OutputWeight * ChunksBeforeGate));

    // [scheduler] lookahead = 0.5 of max_tokens 64: the grant prepays 32 completion tokens, so the
    // first chunks charge nothing more, and the settlement refunds the lookahead's unused rest
    // (the worker reports 30): the books end exact.
    [Fact]
    public Task Lookahead_ChargedAtTheGrant_ChunksWithinItFree_SettlesToExactlyTheWeightedUsage() =>
        StreamAndSettleAsync(scheduler: "lookahead = 0.5", expectedMid: (InputWeight * PromptEstimate) + (OutputWeight * 0.5 * MaxTokens));

    // A stream held after its first chunks: the counters then are `expectedMid` (past the prompt
    // charge), and once it ends they settle to exactly the worker's usage at the weights, the refund
    // of the prompt over-estimate and the completion tokens beyond the chunks included.
    private static async Task StreamAndSettleAsync(string scheduler, double expectedMid)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await using var worker = new RawWorker(_ => HeldStream(gate.Task, withRest: true));
            await using var run = await StartAsync(worker, scheduler);

            using var response = await run.Data.SendAsync(Chat(), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync());
            await ReadContentChunksAsync(events, ChunksBeforeGate);

            var mid = await CountersAsync(run.Admin);
            var promptCharge = InputWeight * PromptEstimate;
            Assert.Equal(expectedMid / TenantWeight, mid.Tenant, 9);
            Assert.Equal(expectedMid / ClassWeight, mid.Class, 9);
            Assert.True(mid.Tenant > promptCharge / TenantWeight, $"mid-stream counter {mid.Tenant} has not grown past the prompt charge {promptCharge / TenantWeight}");
            Assert.Equal(1, mid.InFlight);

            gate.SetResult();
            Assert.Contains("data: [DONE]", await events.ReadToEndAsync(), StringComparison.Ordinal);

            var end = await SettledAsync(run.Admin);
            var cost = (InputWeight * PromptTokens) + (OutputWeight * CompletionTokens);
            Assert.Equal(cost / TenantWeight, end.Tenant, 9);
            Assert.Equal(cost / ClassWeight, end.Class, 9);
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    [Fact]
    public async Task ClientAbort_MidStream_ChargesThePromptEstimateAndTheChunksRelayed()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            // The rest of the stream never comes: the client leaves after the first chunks.
            await using var worker = new RawWorker(_ => HeldStream(gate.Task, withRest: false));
            await using var run = await StartAsync(worker);

            var response = await run.Data.SendAsync(Chat(), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var events = new StreamReader(await response.Content.ReadAsStreamAsync());
            await ReadContentChunksAsync(events, ChunksBeforeGate);
            events.Dispose();
            response.Dispose(); // MaxResponseDrainSize 0: the connection closes at once

            // The abort is accounted as estimated usage (the prompt estimate and one completion
            // token per chunk relayed), which is what the counters were charged as it streamed.
            var end = await SettledAsync(run.Admin);
            var relayed = (InputWeight * PromptEstimate) + (OutputWeight * ChunksBeforeGate);
            Assert.Equal(relayed / TenantWeight, end.Tenant, 9);
            Assert.Equal(relayed / ClassWeight, end.Class, 9);

            using var tenants = JsonDocument.Parse(await run.Admin.GetStringAsync("/api/tenants"));
            var tenant = tenants.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "streamer");
            Assert.Equal(PromptEstimate, tenant.GetProperty("prompt_tokens").GetInt64());
            Assert.Equal(ChunksBeforeGate, tenant.GetProperty("completion_tokens").GetInt64());
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    private static HttpRequestMessage Chat() =>
        TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: MaxTokens, content: Prompt), Key);

    // The gateway (the AOT binary in CI) in front of the worker, tenant "streamer" (weight 2) in
    // class "streaming" (weight 4).
    private static async Task<Run> StartAsync(RawWorker worker, string scheduler = "")
    {
        var directory = new TempDirectory();
        var config = Path.Combine(directory.Path, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([], extra: $"""

            [scheduler]
            policy = "fairshare"
            input_weight = {InputWeight.ToString("0.0", CultureInfo.InvariantCulture)}
            output_weight = {OutputWeight.ToString("0.0", CultureInfo.InvariantCulture)}
            {scheduler}

            [[workers]]
            name = "raw"
            url = "{worker.BaseUri}"
            models = ["{TestGateway.Model}"]
            max_concurrency = 1

            [[classes]]
            name = "default"

            [[classes]]
            name = "streaming"
            weight = {ClassWeight}

            [[tenants]]
            name = "streamer"
            class = "streaming"
            weight = {TenantWeight}
            api_key_sha256 = ["{ApiKeyIndex.HashKey(Key)}"]
            """));
        var process = GatewayProcess.Start("serve", "--config", config);
        await process.WaitForReadyAsync();
        return new Run(directory, process);
    }

    // The head and ChunksBeforeGate content chunks; once the gate opens (withRest), the other
    // chunks, the finish chunk, the usage-only chunk the gateway asked for, and [DONE]. Chunked.
    private static RawReply HeldStream(Task gate, bool withRest)
    {
        var first = new StringBuilder();
        for (var i = 0; i < ChunksBeforeGate; i++)
        {
            first.Append(ContentChunk(i));
        }

        var head = Encoding.UTF8.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + HttpChunk(first.ToString()));
        if (!withRest)
        {
            return new RawReply([head, "0\r\n\r\n"u8.ToArray()], BeforeLaterParts: gate);
        }

        var rest = new StringBuilder();
        for (var i = ChunksBeforeGate; i < ChunksBeforeGate + ChunksAfterGate; i++)
        {
            rest.Append(ContentChunk(i));
        }

        rest.Append(Event("""{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}]}"""));
        var usage = $"\"prompt_tokens\":{PromptTokens},\"total_tokens\":{PromptTokens + CompletionTokens},\"completion_tokens\":{CompletionTokens}";
        rest.Append(Event("""{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{""" + usage + "}}"));
        rest.Append("data: [DONE]\n\n");
        return new RawReply([head, Encoding.UTF8.GetBytes(HttpChunk(rest.ToString()) + "0\r\n\r\n")], BeforeLaterParts: gate);
    }

    private static string ContentChunk(int i) =>
        Event($$"""{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"word{{i}} "},"finish_reason":null}]}""");

    private static string Event(string json) => $"data: {json}\n\n";

    private static string HttpChunk(string text) => $"{Encoding.UTF8.GetByteCount(text):x}\r\n{text}\r\n";

    // Reads SSE lines until `count` content chunks have arrived (bounded by the client's timeout).
    private static async Task ReadContentChunksAsync(StreamReader events, int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = 0;
        while (seen < count)
        {
            var line = await events.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException($"the stream ended after {seen} content chunks");
            seen += line.Contains("\"content\":\"word", StringComparison.Ordinal) ? 1 : 0;
        }
    }

    // Once the gateway is done with the one request: the counters it settled. Its release frees the
    // slot first and settles the tenant's and class's counters after (ModelAdmission.Release), in
    // its finally, and the request is counted last: waiting for in_use 0 read them unsettled.
    private static async Task<Counters> SettledAsync(HttpClient admin)
    {
        await Fleet.MetricsAfterAsync(admin, 1);
        var counters = await CountersAsync(admin);
        Assert.Equal((0, 0), (counters.InUse, counters.InFlight));
        return counters;
    }

    private static async Task<Counters> CountersAsync(HttpClient admin)
    {
        using var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues"));
        var model = queues.RootElement.GetProperty("models")[0];
        var tenant = model.GetProperty("tenants").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "streamer");
        var cls = model.GetProperty("classes").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "streaming");
        return new Counters(
            tenant.GetProperty("virtual_tokens").GetDouble(),
            cls.GetProperty("virtual_tokens").GetDouble(),
            tenant.GetProperty("in_flight").GetInt32(),
            model.GetProperty("in_use").GetInt32());
    }

    private readonly record struct Counters(double Tenant, double Class, int InFlight, int InUse);

    private sealed class Run(TempDirectory directory, GatewayProcess process) : IAsyncDisposable
    {
        public HttpClient Data { get; } = new(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = process.DataUri, Timeout = TimeSpan.FromSeconds(30) };

        public HttpClient Admin { get; } = new() { BaseAddress = process.AdminUri, Timeout = TimeSpan.FromSeconds(30) };

        public async ValueTask DisposeAsync()
        {
            Data.Dispose();
            Admin.Dispose();
            await process.DisposeAsync();
            directory.Dispose();
        }
    }
}
