using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// [routing] warmup through the real executable (the AOT binary in CI), in front of workers that
// record the order of the requests they see: a worker that recovers (its breaker opened, its
// health came back) answers the gateway's warm-up before any client request, and one that serves
// only chat is warmed up with a chat completion.
public sealed class WarmupBinaryTests : IDisposable
{
    // Fast (the warm-up is tried again every interval), but three missed checks in a row take a
    // worker out: parallel test classes on a shared machine do miss one now and then.
    private const string Health = """

        [health]
        interval = "500ms"
        timeout = "500ms"
        unhealthy_threshold = 3
        healthy_threshold = 1
        """;

    // Bounds of the loops that send client traffic while the gateway does its part.
    private const int MaxRequests = 400;
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(20);

    private static readonly byte[] Chat = RawWorker.Json(Fixtures.Text("openai/chat_nonstream.json"));
    private static readonly byte[] Completion = RawWorker.Json(Fixtures.Text("openai/completions.json"));
    private static readonly byte[] ServerError = Status(500, "Internal Server Error", Fixtures.Text("openai/error_vllm.json"));
    private static readonly byte[] NotFound = Status(404, "Not Found", """{"detail":"Not Found"}""");

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task ABreakerThatOpened_ItsWorkerAnswersTheWarmupBeforeAnyClientRequest_WhenTheOpenPeriodEnds()
    {
        using var failing = new ManualResetEventSlim();
        await using var good = RawWorker.Answering(Answer);
        await using var flaky = RawWorker.Answering(r => failing.IsSet ? RawReply.Of(ServerError) : Answer(r));
        await using var gateway = await StartAsync(good.Section(TestGateway.Model, "good") + flaky.Section(TestGateway.Model, "flaky") + """

            [circuit_breaker]
            failure_threshold = 1
            open_timeout = "1s"
            """ + Health);
        using var data = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
        await WarmAsync(admin, flaky);

        // Round robin: within two requests one fails on flaky (and is retried on good), which opens its breaker.
        failing.Set();
        for (var i = 0; i < 20 && await BreakerAsync(admin, "flaky") != "open"; i++)
        {
            using var response = await data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), requestId: $"fail-{i}"));
        }

        Assert.Equal("open", await BreakerAsync(admin, "flaky"));
        Assert.True((await RoutingStatsAsync(admin))["flaky"].GetProperty("warming").GetBoolean(), "the opened breaker marks the worker warming");
        var opened = flaky.Seen.Length;
        failing.Reset();

        // Client traffic throughout the open period and past it: good serves all of it until flaky
        // has seen its next request, which must be the warm-up.
        var failed = await SendUntilAsync(data, "after", () => flaky.Seen.Length > opened, "flaky sees a request after its breaker opened");
        var next = flaky.Seen[opened];
        Assert.True(next is { IsWarmup: true, Method: "POST", Path: "/v1/completions" }, $"after the breaker opened, flaky saw {next} first: {string.Join(", ", flaky.Seen)}");
        Assert.True(failed.Count == 0, $"good served every client request, but: {string.Join("\n", failed)}\n{gateway.Output}");

        // Then it takes client traffic again (its half-open trial closes the breaker).
        Assert.Empty(await SendUntilAsync(data, "then", () => flaky.Seen.Skip(opened).Any(r => !r.IsWarmup), "flaky takes a client request after its warm-up"));
        Assert.All(flaky.Seen.Skip(opened).TakeWhile(r => r.IsWarmup), r => Assert.Equal("/v1/completions", r.Path));
    }

    [Fact]
    public async Task AWorkerThatAnswers404ToCompletions_GetsTheChatWarmup_AndThenTraffic()
    {
        await using var chatOnly = RawWorker.Answering(r => r.Path == "/v1/completions" ? RawReply.Of(NotFound) : RawReply.Of(Chat));
        await using var gateway = await StartAsync(chatOnly.Section(TestGateway.Model, "chat-only"));
        using var data = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(30) };

        // Warmed up before the ready line: the completion first, then the chat form.
        var seen = chatOnly.Seen;
        Assert.True(seen.Length == 2, string.Join(", ", seen));
        Assert.True(seen[0] is { IsWarmup: true, Path: "/v1/completions" }, seen[0].ToString());
        Assert.True(seen[1] is { IsWarmup: true, Path: "/v1/chat/completions" }, seen[1].ToString());
        Assert.False((await RoutingStatsAsync(admin))["chat-only"].GetProperty("warming").GetBoolean());

        using var response = await data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), requestId: "client-1"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("client-1", chatOnly.Seen[2].RequestId);
    }

    [Fact]
    public async Task AWorkerWhoseHealthCameBack_AndWhoseWarmupKeepsFailing_TakesNoClientTraffic_WhileAnotherServesIt()
    {
        using var failing = new ManualResetEventSlim();
        await using var good = RawWorker.Answering(Answer);
        await using var cold = RawWorker.Answering(r => failing.IsSet ? RawReply.Of(ServerError) : Answer(r));
        await using var gateway = await StartAsync(good.Section(TestGateway.Model, "good") + cold.Section(TestGateway.Model, "cold") + Health);
        using var data = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
        await WarmAsync(admin, cold);

        failing.Set();
        cold.Healthy = false;
        await TestGateway.WaitUntilAsync(async () => (await WorkerAsync(admin, "cold")).GetProperty("health").GetString() == "unhealthy", "cold is unhealthy");
        var down = cold.Seen.Length;
        var decisions = (await RoutingStatsAsync(admin))["cold"].GetProperty("decisions").GetInt64();

        // Healthy again, but every warm-up fails: tried again each health interval, while good serves every client.
        cold.Healthy = true;
        var failed = await SendUntilAsync(data, "client", () => cold.Seen.Length >= down + 2, "cold's warm-up is tried twice");

        var since = cold.Seen[down..];
        Assert.True(since.All(r => r.IsWarmup), $"cold took client traffic while warming: {string.Join(", ", since)}");
        Assert.True(failed.Count == 0, $"good served every client request, but: {string.Join("\n", failed)}\n{gateway.Output}");
        var report = await WorkerAsync(admin, "cold");
        Assert.Equal("healthy", report.GetProperty("health").GetString());
        Assert.True(report.GetProperty("warming").GetBoolean());
        Assert.False(report.GetProperty("routable").GetBoolean());
        Assert.Equal(decisions, (await RoutingStatsAsync(admin))["cold"].GetProperty("decisions").GetInt64());
    }

    // Warmed up at start (a missed health check may have warmed it once more): nobody waits now.
    private static async Task WarmAsync(HttpClient admin, RawWorker worker)
    {
        Assert.True(worker.Seen is [{ IsWarmup: true }, ..], string.Join(", ", worker.Seen));
        await TestGateway.WaitUntilAsync(async () => (await RoutingStatsAsync(admin)).Values.All(w => !w.GetProperty("warming").GetBoolean()), "every worker is warm");
    }

    private static RawReply Answer(RawRequest request) => RawReply.Of(request.Path == "/v1/completions" ? Completion : Chat);

    // Client requests, paced, until `condition` holds (bounded in count and time). Returns those
    // that did not succeed, for the test to assert on after what the workers saw.
    private static async Task<List<string>> SendUntilAsync(HttpClient data, string prefix, Func<bool> condition, string what)
    {
        var failed = new List<string>();
        var deadline = DateTime.UtcNow + MaxWait;
        for (var i = 0; !condition(); i++)
        {
            Assert.True(i < MaxRequests && DateTime.UtcNow < deadline, "timed out waiting until " + what);
            using var response = await data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), requestId: $"{prefix}-{i}"));
            if (response.StatusCode != HttpStatusCode.OK)
            {
                failed.Add($"{prefix}-{i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            await Task.Delay(Pace);
        }

        return failed;
    }

    private Task<GatewayProcess> StartAsync(string workers) =>
        GatewayProcess.ServeAsync(_directory.Path, TestGateway.Toml([], extra: workers, warmup: true));

    private static async Task<string?> BreakerAsync(HttpClient admin, string name)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/circuit-breaker/stats"));
        return Fleet.Named(json.RootElement, name).GetProperty("state").GetString();
    }

    private static async Task<JsonElement> WorkerAsync(HttpClient admin, string name)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/workers"));
        return Fleet.Named(json.RootElement, name).Clone();
    }

    private static async Task<Dictionary<string, JsonElement>> RoutingStatsAsync(HttpClient admin)
    {
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/routing/stats"));
        return json.RootElement.GetProperty("workers").EnumerateArray().ToDictionary(w => w.GetProperty("name").GetString()!, w => w.Clone());
    }

    private static byte[] Status(int code, string reason, string body) =>
        Encoding.UTF8.GetBytes($"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}");
}
