using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// x-gateway-queue-updates through the real binary: a queued stream hears its position and ETA as
// SSE comments until it is admitted, then gets the worker's stream whole (the official openai npm
// client ignores the comments); a wait that ends without a slot ends the stream with the terminal
// error event; a non-stream request with the header is answered as before.
public partial class QueueUpdatesBinaryTests
{
    private const string UpdatesHeader = "x-gateway-queue-updates";

    [Fact]
    public async Task AQueuedStream_HearsItsPositionFallToTheHead_ThenGetsTheWholeStream()
    {
        // One slot: a long stream holds it, a JSON request of ~1 s (20 tokens, 50 ms each) waits
        // first, the opted-in stream second: it is at the head for that second.
        await using var gateway = await StartAsync(maxQueueWait: "30s");
        var holder = await HoldTheSlotAsync(gateway);
        var first = gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 20)));
        await WaitForWaitingAsync(gateway, 1);

        using var queued = await gateway.Data.SendAsync(Opted(TestGateway.Chat(stream: true, maxTokens: 3)), HttpCompletionOption.ResponseHeadersRead);

        // The head came with the first comment, while it still waits.
        Assert.Equal(HttpStatusCode.OK, queued.StatusCode);
        Assert.Equal("text/event-stream", queued.Content.Headers.ContentType?.MediaType);
        Assert.Equal(2, await WaitingAsync(gateway));
        using var reader = new StreamReader(await queued.Content.ReadAsStreamAsync());
        var comments = new List<(int Position, long EtaMs)>();
        while (comments.Count < 2) // the second at least a second after the first: nothing moved meanwhile
        {
            comments.Add(ParseComment(await NextEventAsync(reader)));
        }

        holder.Dispose(); // the first waiter takes the slot, then the opted-in stream
        var events = new List<string>();
        while (true)
        {
            var line = await NextEventAsync(reader);
            if (line.StartsWith(':'))
            {
                Assert.Empty(events); // no comment after the worker's first event
                comments.Add(ParseComment(line));
                continue;
            }

            events.Add(line);
            if (line == "data: [DONE]")
            {
                break;
            }
        }

        Assert.Equal(2, comments[0].Position);
        Assert.Equal(1, comments[^1].Position);
        for (var i = 1; i < comments.Count; i++)
        {
            Assert.True(comments[i].Position <= comments[i - 1].Position, string.Join(", ", comments));
        }

        Assert.All(comments, c => Assert.InRange(c.EtaMs, 1, 60_000));
        Assert.All(events[..^1], e => Assert.StartsWith("data: {\"id\":", e, StringComparison.Ordinal));
        Assert.Contains(events, e => e.Contains("\"finish_reason\":\"", StringComparison.Ordinal));
        Assert.DoesNotContain(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await first.WaitAsync(TimeSpan.FromSeconds(30))).StatusCode);

        using var queues = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/queues"));
        var model = queues.RootElement.GetProperty("models")[0];
        Assert.True(model.GetProperty("grant_rate").GetDouble() > 0, model.ToString());
        Assert.False(model.TryGetProperty("grants_per_second", out _), model.ToString()); // one name for the one rate
    }

    [Fact]
    public async Task TheOpenAiClient_StreamsAQueuedRequestWithUpdates_AndGetsTheSameCompletionAsUnqueued()
    {
        await using var gateway = await StartAsync(maxQueueWait: "30s");
        var unqueued = await NodeChat.StreamAsync(gateway, maxTokens: 5);
        Assert.True(unqueued.GetProperty("ok").GetBoolean(), unqueued.ToString());

        var holder = await HoldTheSlotAsync(gateway);
        var commentLog = Path.Combine(Path.GetTempPath(), $"aotproxy-comments-{Guid.NewGuid():N}.log");
        try
        {
            var queued = NodeChat.StreamAsync(gateway, maxTokens: 5, header: UpdatesHeader + "=true", commentLog: commentLog);
            await WaitForWaitingAsync(gateway, 1);

            // The client's fetch hears comments meanwhile: one at once, then one a second. After two,
            // the client still streams (it neither ended nor raised on them).
            await TestGateway.WaitUntilAsync(() => Task.FromResult(CommentsIn(commentLog).Length >= 2), "the client heard two comments");
            Assert.All(CommentsIn(commentLog), c => ParseComment(c));
            Assert.False(queued.IsCompleted);
            holder.Dispose();

            var result = await queued.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
            Assert.Equal(unqueued.GetProperty("text").GetString(), result.GetProperty("text").GetString());
            Assert.NotEqual("", result.GetProperty("text").GetString());
        }
        finally
        {
            File.Delete(commentLog);
        }
    }

    [Fact]
    public async Task AQueuedStreamThatTimesOut_EndsWithTheTerminalErrorEvent_AndANonStreamGetsItsStatusLine()
    {
        await using var gateway = await StartAsync(maxQueueWait: "1500ms");
        var holder = await HoldTheSlotAsync(gateway);

        using var stream = await gateway.Data.SendAsync(Opted(TestGateway.Chat(stream: true, maxTokens: 3)), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        var body = await stream.Content.ReadAsStringAsync();

        // Comments, then one error event and [DONE]: the stream idle timeout's shape.
        var parts = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.True(parts.Length >= 3, body);
        Assert.All(parts[..^2], p => ParseComment(p));
        Assert.Equal("data: [DONE]", parts[^1]);
        Assert.StartsWith("data: ", parts[^2], StringComparison.Ordinal);
        using (var error = JsonDocument.Parse(parts[^2]["data: ".Length..]))
        {
            var e = error.RootElement.GetProperty("error");
            Assert.Equal("overloaded", e.GetProperty("code").GetString());
            Assert.Contains("max_queue_wait", e.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Contains("queue position 1", e.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // The official client raises it as an APIError with our code.
        var client = await NodeChat.StreamAsync(gateway, maxTokens: 3, header: UpdatesHeader + "=true");
        Assert.False(client.GetProperty("ok").GetBoolean(), client.ToString());
        Assert.True(client.GetProperty("apiError").GetBoolean(), client.ToString());
        Assert.Equal("overloaded", client.GetProperty("code").GetString());

        // Non-stream: the header changes nothing; a 503 with its headers, as before.
        using (var json = await gateway.Data.SendAsync(Opted(TestGateway.Chat(stream: false))))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, json.StatusCode);
            Assert.Equal("1", json.Headers.GetValues("x-gateway-queue-position").Single());
            Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
        }

        // No slot leaked: once the holder is gone, an opted-in stream is served at once, without comments.
        holder.Dispose();
        await WaitForWaitingAsync(gateway, 0);
        await TestGateway.WaitUntilAsync(async () => (await QueuesModelAsync(gateway)).GetProperty("in_use").GetInt32() == 0, "the slot is free");
        using var served = await gateway.Data.SendAsync(Opted(TestGateway.Chat(stream: true, maxTokens: 2)));
        var text = await served.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.StartsWith("data: {", text, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
        Assert.True(served.Headers.Contains("x-gateway-queue-ms"));

        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        Assert.Equal(3, MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"timed_out\""));
    }

    private static async Task<BinaryGateway> StartAsync(string maxQueueWait) =>
        await BinaryGateway.StartAsync(
            1,
            extraToml: $"""

                [[classes]]
                name = "default"
                max_queue_wait = "{maxQueueWait}"
                """,
            configure: o =>
            {
                o.MaxNumSeqs = 1;
                o.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50);
            });

    // A stream of 50 s holds the only slot until it is disposed (the gateway then cancels it upstream).
    private static async Task<HttpResponseMessage> HoldTheSlotAsync(BinaryGateway gateway)
    {
        var holder = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 1000)), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        return holder;
    }

    private static HttpRequestMessage Opted(string json)
    {
        var request = TestGateway.Post("v1/chat/completions", json);
        request.Headers.Add(UpdatesHeader, "true");
        return request;
    }

    // The next SSE event or comment (its one line), skipping the blank line between them; bounded.
    private static async Task<string> NextEventAsync(StreamReader reader)
    {
        while (true)
        {
            var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotNull(line);
            if (line.Length > 0)
            {
                return line;
            }
        }
    }

    // The comment lines the Node client logged so far (none before its first).
    private static string[] CommentsIn(string commentLog) =>
        File.Exists(commentLog) ? File.ReadAllLines(commentLog) : [];

    private static (int Position, long EtaMs) ParseComment(string line)
    {
        var match = CommentPattern().Match(line);
        Assert.True(match.Success, line);
        return (int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    private static async Task<JsonElement> QueuesModelAsync(BinaryGateway gateway)
    {
        using var queues = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/queues"));
        return queues.RootElement.GetProperty("models")[0].Clone();
    }

    private static async Task<int> WaitingAsync(BinaryGateway gateway) => (await QueuesModelAsync(gateway)).GetProperty("waiting").GetInt32();

    private static Task WaitForWaitingAsync(BinaryGateway gateway, int waiting) =>
        TestGateway.WaitUntilAsync(async () => await WaitingAsync(gateway) == waiting, $"{waiting} request(s) wait");

    [GeneratedRegex(@"^: queued position=(\d+) eta_ms=(\d+)$")]
    private static partial Regex CommentPattern();
}
