using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Every proxied response says where its time went (SPEC.md: x-gateway-queue-ms; issue 18):
// x-gateway-queue-ms, the admission queue wait in whole ms rounded up, and x-gateway-overhead-ms,
// the gateway's own time up to the response head, and llm_gateway_overhead_seconds observes the
// latter once per request a worker answered. Against the real executable (the AOT binary in CI)
// in front of a RawWorker with one slot, whose streams wait for the test's gate.
public class TimingHeadersTests
{
    private static readonly string StreamBody = Fixtures.Text("openai/chat_stream.sse");
    private static readonly string JsonBody = Fixtures.Text("openai/chat_nonstream.json");
    private const string BriefKey = "sk-test-brief";

    [Fact]
    public async Task Serve_AQueuedRequest_SaysItWaitedAtLeastAsLongAsItWasHeld_OthersSayZero_OnStreamsAndJson_AndEachIsObservedOnce()
    {
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            // 1 and 4: streams held on a gate; 2, 3: JSON answers at once. The one slot (max_concurrency 1)
            // makes 2 queue behind 1, and 5 (class "brief") behind 4 until its max_queue_wait refuses it.
            await using var worker = new RawWorker(n => n switch
            {
                1 => HeldStream(first.Task),
                4 => HeldStream(second.Task),
                _ => RawReply.Of(RawWorker.Json(JsonBody)),
            });
            var directory = Directory.CreateTempSubdirectory("aotproxy-timing-");
            var config = Path.Combine(directory.FullName, "aotproxy.toml");
            await File.WriteAllTextAsync(config, TestGateway.Toml([], extra: $"""

                [[workers]]
                name = "raw"
                url = "{worker.BaseUri}"
                models = ["{TestGateway.Model}"]
                max_concurrency = 1

                [[classes]]
                name = "default"
                max_queue_wait = "30s"

                [[classes]]
                name = "brief"
                max_queue_wait = "500ms"

                [[tenants]]
                name = "brief"
                class = "brief"
                api_key_sha256 = ["{ApiKeyIndex.HashKey(BriefKey)}"]
                """));
            await using var gateway = GatewayProcess.Start("serve", "--config", config);
            await gateway.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
            using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

            // A stream that found the slot free: 0, and its overhead (a header before its first event).
            using var holder = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true)), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
            Assert.Equal("0", Header(holder, "x-gateway-queue-ms"));
            var holderOverhead = Milliseconds(holder, "x-gateway-overhead-ms");

            // Queued behind it for as long as the test holds the gate (at least 300 ms from the
            // moment /api/queues showed it waiting).
            // Its whole time as the client saw it, from before the send to the whole answer: the
            // gateway's queue wait and overhead both lie inside it.
            var sent = Stopwatch.StartNew();
            var queued = TimedAsync(http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))), sent);
            await WaitingAsync(admin, 1);
            var held = Stopwatch.StartNew();
            await Task.Delay(300);
            // Read before the release: read after it, a test thread scheduled late counted time in
            // which the queued request was already served.
            var heldMs = held.Elapsed.TotalMilliseconds;
            first.SetResult();
            Assert.Equal(StreamBody, await holder.Content.ReadAsStringAsync());

            var (queuedResponse, clientMs) = await queued.WaitAsync(TimeSpan.FromSeconds(30));
            using (var response = queuedResponse)
            {
                Assert.Equal((HttpStatusCode.OK, JsonBody), (response.StatusCode, await response.Content.ReadAsStringAsync()));
                var queueMs = int.Parse(Header(response, "x-gateway-queue-ms"), CultureInfo.InvariantCulture);
                Assert.True(queueMs >= Math.Floor(heldMs), $"x-gateway-queue-ms {queueMs} < held {heldMs:0.0} ms");

                // The wait is not the gateway's overhead: the overhead leaves it out, so the two
                // add up to no more than the client's whole wait (2 ms: queue-ms is rounded up to whole ms).
                // An overhead that held the wait would make them about twice the wait. (Before:
                // overhead < queue-ms, which a host that stalls the gateway 300 ms breaks.)
                var overhead = Milliseconds(response, "x-gateway-overhead-ms");
                Assert.True(overhead + queueMs <= clientMs + 2, $"x-gateway-overhead-ms {overhead} + x-gateway-queue-ms {queueMs} > the client's {clientMs:0.0} ms: the overhead includes the queue wait");
            }

            // JSON that found the slot free: 0. The queued request frees the slot in its finally,
            // which may run after its client read the last byte: once it and the holder are counted
            // (after the release), the slot is free.
            await Fleet.MetricsAfterAsync(admin, 2);
            using (var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("0", Header(response, "x-gateway-queue-ms"));
                Assert.True(Milliseconds(response, "x-gateway-overhead-ms") >= 0);
            }

            // The gateway's own 503 after waiting max_queue_wait says how long it waited. The slot is
            // free once the JSON one above is counted.
            await Fleet.MetricsAfterAsync(admin, 3);
            using var secondHolder = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true)), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal("0", Header(secondHolder, "x-gateway-queue-ms"));
            using (var refused = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false), BriefKey)))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Contains("max_queue_wait", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                Assert.True(int.Parse(Header(refused, "x-gateway-queue-ms"), CultureInfo.InvariantCulture) >= 500, Header(refused, "x-gateway-queue-ms"));
                Assert.True(Milliseconds(refused, "x-gateway-overhead-ms") >= 0);
            }

            second.SetResult();
            Assert.Equal(StreamBody, await secondHolder.Content.ReadAsStringAsync());

            // Each of the four requests a worker answered observed once (the refused one is not):
            // read once all five are counted, which happens after the observation.
            var metrics = string.Empty;
            await TestGateway.WaitUntilAsync(async () => Fleet.Sum(metrics = await admin.GetStringAsync("/metrics"), "llm_gateway_requests_total") == 5, "five requests counted");
            Assert.Equal(4, MetricsText.Value(metrics, "llm_gateway_overhead_seconds_count", $"model=\"{TestGateway.Model}\""));
            Assert.True(holderOverhead / 1000 <= MetricsText.Value(metrics, "llm_gateway_overhead_seconds_sum", $"model=\"{TestGateway.Model}\""));
            directory.Delete(recursive: true);
        }
        finally
        {
            first.TrySetResult();
            second.TrySetResult();
        }
    }

    // The head and the first event, then (once the gate opens) the rest of the stream, chunked.
    private static RawReply HeldStream(Task gate)
    {
        var split = StreamBody.IndexOf("\n\n", StringComparison.Ordinal) + 2;
        var head = Encoding.UTF8.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk(StreamBody[..split]));
        var rest = Encoding.UTF8.GetBytes(Chunk(StreamBody[split..]) + "0\r\n\r\n");
        return new RawReply([head, rest], BeforeLaterParts: gate);
    }

    private static string Chunk(string text) =>
        $"{Encoding.UTF8.GetByteCount(text):x}\r\n{text}\r\n";

    private static string Header(HttpResponseMessage response, string name) =>
        Assert.Single(response.Headers.TryGetValues(name, out var values) ? values : []);

    // "12.345": milliseconds with three decimals.
    // The response and the milliseconds from `since`'s start to its whole answer (read in full).
    private static async Task<(HttpResponseMessage Response, double Ms)> TimedAsync(Task<HttpResponseMessage> sending, Stopwatch since)
    {
        var response = await sending;
        return (response, since.Elapsed.TotalMilliseconds);
    }

    private static double Milliseconds(HttpResponseMessage response, string name)
    {
        var text = Header(response, name);
        Assert.Matches(@"^\d+\.\d{3}$", text);
        return double.Parse(text, CultureInfo.InvariantCulture);
    }

    private static async Task WaitingAsync(HttpClient admin, int waiting) =>
        await TestGateway.WaitUntilAsync(
            async () =>
            {
                using var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues"));
                return queues.RootElement.GetProperty("models") is { ValueKind: JsonValueKind.Array } models
                    && models.GetArrayLength() > 0 && models[0].GetProperty("waiting").GetInt32() == waiting;
            },
            $"{waiting} request(s) waiting");
}
