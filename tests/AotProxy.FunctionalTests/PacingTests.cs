using System.Diagnostics;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Upstream pacing end to end: a simulated hosted API that answers 429 above its rpm, behind a
// gateway whose worker has the same rpm. Offered three times that rate, the gateway holds the
// surplus back (or refuses it with 503 after max_wait) and the upstream never answers 429.
public class PacingTests
{
    private const int Rpm = 120;              // 2 per second; the gateway keeps 118 per minute (margin 2)
    private const double OfferedPerSecond = 3.0 * Rpm / 60;
    private static readonly TimeSpan Spacing = TimeSpan.FromSeconds(60.0 / (Rpm - 2));
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task ThreeTimesTheRpm_ThroughTheGateway_TheUpstreamNeverAnswers429()
    {
        await using var gateway = await TestGateway.StartAsync(
            workers: 1,
            configure: o => { o.RequestsPerMinute = Rpm; o.SpeedFactor = 20; },
            extraToml: $"rpm = {Rpm}\n\n[pacing]\nmax_wait = \"{MaxWait.TotalSeconds}s\"\n");
        var simulator = gateway.Workers[0];
        var started = Stopwatch.GetTimestamp();

        var outcomes = await OfferAsync(gateway.Client, () => TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4)), TimeSpan.FromSeconds(12));
        var elapsed = Stopwatch.GetElapsedTime(started);

        Assert.Equal(0, simulator.Stats.RateLimited);
        var served = outcomes.Count(o => o.Status == HttpStatusCode.OK);
        var refused = outcomes.Where(o => o.Status == HttpStatusCode.ServiceUnavailable).ToArray();
        Assert.Equal(outcomes.Length, served + refused.Length); // nothing but 200 and 503
        Assert.All(refused, o => Assert.Equal("overloaded", o.Code));
        Assert.All(refused, o => Assert.True(o.RetryAfter >= 1, "a paced 503 carries retry-after"));
        Assert.Equal(served, simulator.Stats.RequestsTotal);

        // Never faster than one per spacing. That each turn is taken, at its time, is
        // UpstreamPacerTests' (the same load on a clock the test moves): a floor on `served` here
        // would time this machine, not the pacer.
        Assert.True(served <= (int)(elapsed / Spacing) + 1, $"{served} served in {elapsed}");
        Assert.NotEmpty(refused); // 3x the rate for 12 s is more than max_wait can absorb

        var pacing = (await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("pacing");
        Assert.Equal(Rpm, pacing.GetProperty("rpm").GetInt64());
        Assert.Equal(Rpm - 2, pacing.GetProperty("request_limit").GetInt64());
        Assert.Equal(served, pacing.GetProperty("requests").GetInt64());
        Assert.Equal(refused.Length, pacing.GetProperty("timeouts").GetInt64());
        Assert.InRange(pacing.GetProperty("waits").GetInt64(), refused.Length + 1, outcomes.Length); // a waiter was let go: the timer is wired
        Assert.True(pacing.GetProperty("wait_seconds").GetDouble() >= refused.Length * MaxWait.TotalSeconds * 0.99);
        Assert.Equal(served, pacing.GetProperty("window_requests").GetInt32()); // all within the last 60 s
        Assert.Equal(0, pacing.GetProperty("waiting").GetInt32());
    }

    // The control: the same rate sent straight to the simulator earns 429s, so the test above
    // could fail. 4 s is enough: the simulator refuses a burst within its first second.
    [Fact]
    public async Task ThreeTimesTheRpm_StraightToTheSimulator_Gets429s()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => { o.RequestsPerMinute = Rpm; o.SpeedFactor = 20; });
        var simulator = gateway.Workers[0];
        using var direct = new HttpClient { BaseAddress = simulator.BaseUri, Timeout = TimeSpan.FromSeconds(30) };

        var outcomes = await OfferAsync(direct, () => TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key: null), TimeSpan.FromSeconds(4));

        var limited = outcomes.Count(o => o.Status == HttpStatusCode.TooManyRequests);
        Assert.True(limited >= outcomes.Length / 3, $"{limited} of {outcomes.Length} got 429");
        Assert.Equal(limited, simulator.Stats.RateLimited);
        Assert.All(outcomes.Where(o => o.Status == HttpStatusCode.TooManyRequests), o => Assert.Equal("rate_limit_exceeded", o.Code));
    }

    // A request that waited out max_wait never went upstream: its tenant's RPM and TPM take nothing
    // for it, and the ledger records it as pacing_timeout.
    [Fact]
    public async Task PacingTimeout_GivesTheTenantsRequestAndTokensBack()
    {
        const string key = "sk-test-paced-tenant";
        await using var gateway = await TestGateway.StartAsync(
            workers: 1,
            extraToml: $"""
                rpm = 4

                [pacing]
                max_wait = "300ms"

                [[tenants]]
                name = "metered"
                api_key_sha256 = ["{AotProxy.Identity.ApiKeyIndex.HashKey(key)}"]
                rpm = 100
                tpm = 100000
                """);

        using var first = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key: key));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var usage = JsonDocument.Parse(await first.Content.ReadAsStringAsync());
        var used = usage.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt64();

        // rpm 4 less the margin of 2: one request per 30 s; the second gets no turn in 300 ms.
        using var second = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 500), key: key));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);

        // The sliding minute does not refill: what is left is exactly what the first request left,
        // once the gateway has settled both (counted last, in their finally). A give-back to a bin
        // that has left the current second shows only from the next second on (SlidingWindow.GiveBack,
        // conservative by less than a second): wait for exactly that, which neither refill nor a
        // missing give-back could reach.
        await Fleet.MetricsAfterAsync(gateway.Admin, 2);
        var tenant = default(JsonElement);
        await TestGateway.WaitUntilAsync(
            async () => (tenant = Fleet.Named(await Fleet.GetJsonAsync(gateway, "/api/tenants"), "metered")) is var t
                && t.GetProperty("remaining_requests").GetInt64() == 99 && t.GetProperty("remaining_tokens").GetInt64() == 100_000 - used,
            "the paced-out request's RPM and TPM are given back");
        Assert.Equal(0, tenant.GetProperty("limited_in_flight").GetInt32());
    }

    // A paced worker's tpm is charged the request's one reservation, which a budget caps as it caps
    // the max_tokens the worker gets (limits.budget_overrun = "cap", the default): max_tokens 1,000
    // against a budget of 100 tokens reserves the 100 the budget can pay for (prompt estimate +
    // what is left after it), not the prompt + 1,000 the client asked for (issue 15).
    [Fact]
    public async Task PacedWorker_IsChargedTheReservationTheBudgetCapped()
    {
        const string key = "sk-test-paced-budget";
        const long budget = 100;
        await using var gateway = await TestGateway.StartAsync(
            workers: 1,
            extraToml: $"""
                tpm = 1000000

                [[tenants]]
                name = "capped"
                api_key_sha256 = ["{AotProxy.Identity.ApiKeyIndex.HashKey(key)}"]
                budget_tokens = {budget}
                """);

        using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 1000), key: key));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var usage = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.InRange(usage.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt64(), 1, budget - 1); // the worker got the cap

        var pacing = (await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("pacing");
        Assert.Equal(1, pacing.GetProperty("window_requests").GetInt32());
        Assert.Equal(budget, pacing.GetProperty("window_tokens").GetInt64());
    }

    [Fact]
    public async Task PacedWorker_ShowsItsPacingInMetricsAndApiWorkers_AnUnpacedOneDoesNot()
    {
        // sim-1 (the last [[workers]], which the extra keys extend): 32 rpm, margin 2 -> one request
        // per 2 s; sim-0 unpaced. Round robin alternates, so sim-1's second request, a few ms after
        // its first, waits for its turn.
        await using var gateway = await TestGateway.StartAsync(workers: 2, extraToml: "rpm = 32\n\n[pacing]\nmax_wait = \"5s\"\n");
        await Fleet.SpreadAsync(gateway, 4);

        var metrics = await gateway.MetricsAsync();
        Assert.Equal(2, MetricsText.Value(metrics, "llm_worker_paced_requests_total", "worker=\"sim-1\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_worker_pacing_waits_total", "worker=\"sim-1\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_worker_pacing_wait_seconds_count", "worker=\"sim-1\""));
        Assert.True(MetricsText.Value(metrics, "llm_worker_pacing_wait_seconds_sum", "worker=\"sim-1\"") > 1.0);
        Assert.Contains("llm_worker_pacing_timeouts_total{worker=\"sim-1\"} 0", metrics, StringComparison.Ordinal);
        Assert.Equal(2, MetricsText.Value(metrics, "llm_worker_pacing_window_requests", "worker=\"sim-1\""));
        Assert.True(MetricsText.Value(metrics, "llm_worker_pacing_window_tokens", "worker=\"sim-1\"") > 2 * 4);
        Assert.DoesNotContain("llm_worker_paced_requests_total{worker=\"sim-0\"}", metrics, StringComparison.Ordinal);

        var workers = await Fleet.GetJsonAsync(gateway, "/api/workers");
        Assert.Equal(2, Fleet.Named(workers, "sim-1").GetProperty("pacing").GetProperty("requests").GetInt64());
        Assert.Equal(JsonValueKind.Null, Fleet.Named(workers, "sim-0").GetProperty("pacing").ValueKind);
    }

    // Open loop: one request every 1/OfferedPerSecond s for `duration`, whatever the answers do.
    private static async Task<Outcome[]> OfferAsync(HttpClient client, Func<HttpRequestMessage> request, TimeSpan duration)
    {
        var interval = TimeSpan.FromSeconds(1 / OfferedPerSecond);
        var count = (int)(duration / interval);
        var sends = new Task<Outcome>[count];
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var wait = (interval * i) - Stopwatch.GetElapsedTime(started);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }

            sends[i] = SendAsync(client, request());
        }

        return await Task.WhenAll(sends);
    }

    private static async Task<Outcome> SendAsync(HttpClient client, HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            string? code = null;
            if (response.StatusCode != HttpStatusCode.OK)
            {
                using var json = JsonDocument.Parse(body);
                code = json.RootElement.GetProperty("error").GetProperty("code").ToString();
            }

            return new Outcome(response.StatusCode, code, (int)(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0));
        }
    }

    private sealed record Outcome(HttpStatusCode Status, string? Code, int RetryAfter);
}
