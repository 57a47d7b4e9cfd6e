using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// The route stage end to end: which worker each request really reached (the simulators' own
// counters), against what the admin API and /metrics say about drain, health, scrapes and
// strategies. Intervals are short so that state changes show within a second or two.
public class RoutingTests
{
    private static readonly TimeSpan ReadBound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Drain_LetsInFlightStreamsFinish_AndNewRequestsGoElsewhere()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        var drained = gateway.Workers[0];
        var other = gateway.Workers[1];
        drained.Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(40);

        // Start three slow streams on sim-0: with sim-1 drained meanwhile, they cannot go elsewhere.
        await Fleet.PostJsonAsync(gateway, "/api/workers/sim-1/drain");
        var streams = new List<(HttpResponseMessage Response, StreamReader Reader)>();
        for (var i = 0; i < 3; i++)
        {
            var response = await gateway.Client.SendAsync(
                TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 40, streamOptions: """{"include_usage":true}""")),
                HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            streams.Add((response, reader));
            using var bound = new CancellationTokenSource(ReadBound);
            Assert.StartsWith("data: ", await reader.ReadLineAsync(bound.Token), StringComparison.Ordinal);
        }

        Assert.Equal(3, drained.Stats.RequestsTotal);
        Assert.Equal(0, other.Stats.RequestsTotal);
        await Fleet.PostJsonAsync(gateway, "/api/workers/sim-1/undrain");
        var workers = await Fleet.PostJsonAsync(gateway, "/api/workers/sim-0/drain");
        Assert.True(Fleet.Named(workers, "sim-0").GetProperty("draining").GetBoolean());
        Assert.False(Fleet.Named(workers, "sim-0").GetProperty("routable").GetBoolean());
        Assert.True(Fleet.Named(workers, "sim-1").GetProperty("routable").GetBoolean());

        // While the streams still run, every new request goes to sim-1.
        Assert.Equal(new[] { 0, 6 }, await Fleet.SpreadAsync(gateway, 6));
        Assert.Equal(3, drained.Stats.RequestsTotal);
        Assert.True(drained.Stats.Running > 0 || drained.Stats.Completed < 3, "the streams ended before the drain was tested; make them slower");

        foreach (var (response, reader) in streams)
        {
            using (response)
            {
                using var bound = new CancellationTokenSource(ReadBound);
                var rest = await reader.ReadToEndAsync(bound.Token);
                Assert.EndsWith("data: [DONE]\n\n", rest, StringComparison.Ordinal);
                AssertAllTokensArrived(rest);
            }
        }

        Assert.Equal(3, drained.Stats.Completed);
        Assert.Equal(0, drained.Stats.Aborted);

        // Undrained, it takes its share again.
        drained.Options.Faults.InterTokenDelay = TimeSpan.Zero;
        workers = await Fleet.PostJsonAsync(gateway, "/api/workers/sim-0/undrain");
        Assert.False(Fleet.Named(workers, "sim-0").GetProperty("draining").GetBoolean());
        Assert.Equal(new[] { 2, 2 }, await Fleet.SpreadAsync(gateway, 4));

        // Everything drained: 503 overloaded with retry-after, and not ready.
        await Fleet.PostJsonAsync(gateway, "/api/workers/sim-0/drain");
        await Fleet.PostJsonAsync(gateway, "/api/workers/sim-1/drain");
        var before = Fleet.Requests(gateway);
        using (var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false))))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.True(refused.Headers.RetryAfter is not null, "no retry-after");
            using var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Equal("overloaded", error.RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        Assert.Equal(before, Fleet.Requests(gateway));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await gateway.Admin.GetAsync("/ready")).StatusCode);
        await Fleet.PostJsonAsync(gateway, "/api/workers/sim-1/undrain");
        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.GetAsync("/ready")).StatusCode);
        await Fleet.AssertNothingInFlightAsync(gateway);
    }

    [Fact]
    public async Task ActiveHealth_TakesAnUnhealthyWorkerOut_AndBringsItBack()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2, extraToml: """

            [health]
            interval = "200ms"
            timeout = "200ms"
            unhealthy_threshold = 2
            healthy_threshold = 2
            """);
        var sick = gateway.Workers[1];
        await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("health").GetString() == "healthy", "the first checks passed");

        sick.Options.Faults.UnhealthyHealth = true;
        await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("health").GetString() == "unhealthy", "sim-1 is unhealthy");
        var report = await Fleet.WorkerAsync(gateway, "sim-1");
        Assert.False(report.GetProperty("routable").GetBoolean());
        Assert.Equal("closed", report.GetProperty("breaker").GetString()); // health, not the breaker, took it out
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_healthy_workers", $"model=\"{TestGateway.Model}\""));

        var before = sick.Stats.RequestsTotal;
        Assert.Equal(new[] { 6, 0 }, await Fleet.SpreadAsync(gateway, 6));
        Assert.Equal(before, sick.Stats.RequestsTotal);

        sick.Options.Faults.UnhealthyHealth = false;
        await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("health").GetString() == "healthy", "sim-1 is healthy again");
        Assert.True((await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("routable").GetBoolean());
        Assert.Equal(2, MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_healthy_workers", $"model=\"{TestGateway.Model}\""));
        Assert.Equal(new[] { 2, 2 }, await Fleet.SpreadAsync(gateway, 4));
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("missing")]
    public async Task ScrapedGauges_ShowPerWorker_AndGoStaleWhenTheMetricsBreak(string fault)
    {
        // 200ms: stale after 600ms without a good scrape, enough slack for a busy 2-core box.
        await using var gateway = await TestGateway.StartAsync(workers: 2, routing: """
            strategy = "p2c_kv"
            metrics_interval = "200ms"
            """);
        string[] gauges = ["llm_worker_running_requests", "llm_worker_waiting_requests", "llm_worker_kv_cache_usage"];

        await TestGateway.WaitUntilAsync(async () =>
        {
            var workers = await Fleet.GetJsonAsync(gateway, "/api/workers");
            var metrics = await gateway.MetricsAsync();
            return workers.EnumerateArray().All(w => IsFreshScrape(w.GetProperty("scrape")))
                && gauges.All(g => Fleet.HasSeries(metrics, g, "worker=\"sim-0\"") && Fleet.HasSeries(metrics, g, "worker=\"sim-1\""));
        }, "both workers have fresh gauges");

        SetMetricsFault(gateway.Workers[1].Options.Faults, fault, on: true);
        await TestGateway.WaitUntilAsync(async () =>
        {
            var scrape = (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("scrape");
            var metrics = await gateway.MetricsAsync();
            return scrape.GetProperty("status").GetString() != "ok"
                && !scrape.GetProperty("fresh").GetBoolean()
                && gauges.All(g => !Fleet.HasSeries(metrics, g, "worker=\"sim-1\""));
        }, "sim-1's gauges went stale and left /metrics");

        var status = (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("scrape").GetProperty("status").GetString();
        Assert.False(string.IsNullOrEmpty(status));
        if (fault == "missing")
        {
            Assert.Equal("HTTP 404", status);
        }
        await TestGateway.WaitUntilAsync(async () =>
        {
            var metrics = await gateway.MetricsAsync();
            return IsFreshScrape((await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("scrape"))
                && gauges.All(g => Fleet.HasSeries(metrics, g, "worker=\"sim-0\""));
        }, "sim-0's gauges are unaffected");
        Assert.True((await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("routable").GetBoolean()); // stale gauges are no reason to stop routing

        var served = await Fleet.SpreadAsync(gateway, 6);
        Assert.Equal(6, served.Sum());

        SetMetricsFault(gateway.Workers[1].Options.Faults, fault, on: false);
        await TestGateway.WaitUntilAsync(async () =>
        {
            var metrics = await gateway.MetricsAsync();
            return IsFreshScrape((await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("scrape"))
                && gauges.All(g => Fleet.HasSeries(metrics, g, "worker=\"sim-1\""));
        }, "sim-1's gauges are back");
    }

    [Fact]
    public async Task RoutingStats_CountEveryDecision_AndFollowAStrategyReload()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        var served = await Fleet.SpreadAsync(gateway, 7);

        var stats = await Fleet.GetJsonAsync(gateway, "/api/routing/stats");
        Assert.Equal("round_robin", stats.GetProperty("strategy").GetString());
        var workers = stats.GetProperty("workers");
        Assert.Equal(7, workers.EnumerateArray().Sum(w => w.GetProperty("decisions").GetInt64()));
        Assert.Equal(7, workers.EnumerateArray().Sum(w => w.GetProperty("by_strategy").GetProperty("round_robin").GetInt64()));
        Assert.Equal(served[0], Fleet.Named(workers, "sim-0").GetProperty("decisions").GetInt64());
        Assert.Equal(served[1], Fleet.Named(workers, "sim-1").GetProperty("decisions").GetInt64());

        await File.WriteAllTextAsync(gateway.ConfigPath, TestGateway.Toml(gateway.Workers, routing: "strategy = \"least_connections\""));
        using (var reload = await gateway.Admin.PostAsync("/api/config/reload", null))
        {
            Assert.True(reload.IsSuccessStatusCode, await reload.Content.ReadAsStringAsync());
        }

        served = await Fleet.SpreadAsync(gateway, 3);
        stats = await Fleet.GetJsonAsync(gateway, "/api/routing/stats");
        Assert.Equal("least_connections", stats.GetProperty("strategy").GetString());
        workers = stats.GetProperty("workers");
        Assert.Equal(10, workers.EnumerateArray().Sum(w => w.GetProperty("decisions").GetInt64()));
        Assert.Equal(7, workers.EnumerateArray().Sum(w => w.GetProperty("by_strategy").GetProperty("round_robin").GetInt64()));
        Assert.Equal(3, workers.EnumerateArray().Sum(w => w.GetProperty("by_strategy").GetProperty("least_connections").GetInt64()));
        Assert.Equal(served[0], Fleet.Named(workers, "sim-0").GetProperty("by_strategy").GetProperty("least_connections").GetInt64());
    }

    // Sequential requests, one at a time, on the default metrics_interval (500ms): nothing is ever
    // queued, so nothing should outweigh the prefix bonus.
    [Fact]
    public async Task PrefixAffinity_OneLongSystemPrompt_KeepsSequentialRequestsOnOneWorker()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 3, routing: "strategy = \"p2c_kv\"");
        var system = LongSystemPrompt();

        var served = new int[3];
        for (var i = 0; i < 12; i++)
        {
            served[await Fleet.ServedByAsync(gateway, TestGateway.Post("v1/chat/completions", ChatWithSystem(system, $"Question number {i}?")))]++;
        }

        Assert.True(served.Max() == 12, $"one system prompt was spread over workers: {string.Join(",", served)}");
    }

    [Fact]
    public async Task PrefixAffinity_DifferentSystemPrompts_Spread()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 3, routing: "strategy = \"p2c_kv\"");
        var system = LongSystemPrompt();

        // The prefix that counts is the prompt's start: a different first line is another prompt.
        var served = new int[3];
        for (var i = 0; i < 12; i++)
        {
            served[await Fleet.ServedByAsync(gateway, TestGateway.Post("v1/chat/completions", ChatWithSystem($"You are assistant {i}. {system}", "Question?")))]++;
        }

        Assert.True(served.Count(n => n > 0) >= 2, $"twelve different prompts all went to one worker: {string.Join(",", served)}");
    }

    [Fact]
    public async Task ConsistentHash_KeepsASessionOnOneWorker()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 3, routing: "strategy = \"consistent_hash\"");
        var owner = new Dictionary<string, int>();
        for (var round = 0; round < 3; round++)
        {
            for (var session = 0; session < 8; session++)
            {
                var id = $"session-{session}";
                var request = TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4, content: $"Turn {round}"));
                request.Headers.Add("x-session-id", id);
                var served = await Fleet.ServedByAsync(gateway, request);
                Assert.Equal(owner.TryAdd(id, served) ? served : owner[id], served);
            }
        }

        Assert.True(owner.Values.Distinct().Count() >= 2, "eight sessions all hashed to one worker");

        // Without the header, the body's `user` is the key.
        for (var round = 0; round < 3; round++)
        {
            for (var user = 0; user < 4; user++)
            {
                var id = $"user-{user}";
                var body = $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"Turn {{round}}"}],"max_tokens":4,"user":"{{id}}"}""";
                var served = await Fleet.ServedByAsync(gateway, TestGateway.Post("v1/chat/completions", body));
                Assert.Equal(owner.TryAdd(id, served) ? served : owner[id], served);
            }
        }

        var stats = await Fleet.GetJsonAsync(gateway, "/api/routing/stats");
        Assert.Equal("consistent_hash", stats.GetProperty("strategy").GetString());
        Assert.Equal(36, stats.GetProperty("workers").EnumerateArray().Sum(w => w.GetProperty("by_strategy").GetProperty("consistent_hash").GetInt64()));
    }

    private static void SetMetricsFault(AotProxy.Simulator.SimulatorFaults faults, string fault, bool on)
    {
        if (fault == "garbage")
        {
            faults.GarbageMetrics = on;
        }
        else
        {
            faults.MissingMetrics = on;
        }
    }

    private static bool IsFreshScrape(JsonElement scrape) =>
        scrape.GetProperty("status").GetString() == "ok"
        && scrape.GetProperty("fresh").GetBoolean()
        && scrape.GetProperty("running").ValueKind == JsonValueKind.Number
        && scrape.GetProperty("waiting").ValueKind == JsonValueKind.Number
        && scrape.GetProperty("kv_cache_usage").ValueKind == JsonValueKind.Number;

    // About 4.5 KB, far past the 1 KiB of prompt that the prefix hash covers.
    private static string LongSystemPrompt() => string.Join(' ', Enumerable.Range(0, 600).Select(i => $"rule-{i}"));

    private static string ChatWithSystem(string system, string user) =>
        $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"{{user}}"}],"max_tokens":4}""";

    // Every token chunk the usage chunk counts arrived, the last one with its finish reason.
    private static void AssertAllTokensArrived(string rest)
    {
        var chunks = rest.Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(e => e.StartsWith("data: {", StringComparison.Ordinal))
            .Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement)
            .ToList();
        var usage = chunks.Single(c => c.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object).GetProperty("usage");
        var tokens = chunks.Where(c => c.GetProperty("choices").GetArrayLength() == 1 && !c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("role", out _)).ToList();

        // Only the role chunk was read before the drain: it is the first line of a chat stream.
        Assert.Equal(usage.GetProperty("completion_tokens").GetInt32(), tokens.Count);
        Assert.Equal(JsonValueKind.String, tokens[^1].GetProperty("choices")[0].GetProperty("finish_reason").ValueKind);
    }
}
