using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// The limit stage end to end: tenant rpm, tpm (by reservation) and max_in_flight on a real
// gateway in front of a simulated worker; refusals are OpenAI's 429 with its headers.
public class LimitTests
{
    private const string LimitedKey = "sk-test-rate-limited";

    [Fact]
    public async Task Rpm3_TheFourthRequestInARow_Is429WithRetryAfterAndTheOpenAiHeaders()
    {
        await using var gateway = await StartAsync("rpm = 3");

        for (var expected = 2; expected >= 0; expected--)
        {
            using var ok = await gateway.Client.SendAsync(Chat(maxTokens: 4));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("3", Header(ok, "x-ratelimit-limit-requests"));
            Assert.Equal(expected.ToString(CultureInfo.InvariantCulture), Header(ok, "x-ratelimit-remaining-requests"));
            Assert.EndsWith("s", Header(ok, "x-ratelimit-reset-requests"), StringComparison.Ordinal);
            Assert.False(ok.Headers.Contains("x-ratelimit-limit-tokens")); // no tpm: no token headers
            Assert.False(ok.Headers.Contains("retry-after"));
        }

        using var refused = await gateway.Client.SendAsync(Chat(maxTokens: 4));

        var error = await AssertRateLimitedAsync(refused, "requests");
        Assert.StartsWith($"Rate limit reached for {TestGateway.Model} in tenant rl on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in ", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        // The bucket would give one request back after 20 s, but the three within this minute keep
        // the sliding window full until their second leaves it, 61 s after the first.
        Assert.InRange(int.Parse(Header(refused, "retry-after"), CultureInfo.InvariantCulture), 50, 61);
        Assert.Equal(("3", "0"), (Header(refused, "x-ratelimit-limit-requests"), Header(refused, "x-ratelimit-remaining-requests")));
        Assert.Matches("^(5[0-9](\\.[0-9]+)?s|1m[01](\\.[0-9]+)?s)$", Header(refused, "x-ratelimit-reset-requests")); // until full again: ~61 s
        Assert.Equal(3, gateway.Workers[0].Stats.RequestsTotal);
        var metrics = await gateway.MetricsAfterAsync(4);
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "status=\"429\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_rate_limiter_rejected_total", "tenant=\"rl\"", "reason=\"requests\""));
        Assert.Equal(4, MetricsText.Value(metrics, "llm_rate_limiter_requests_total", "tenant=\"rl\""));

        // A tenant without limits sees none of it.
        using var unlimited = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)));
        Assert.Equal(HttpStatusCode.OK, unlimited.StatusCode);
        Assert.DoesNotContain(unlimited.Headers, h => h.Key.StartsWith("x-ratelimit-", StringComparison.OrdinalIgnoreCase));
        var tenants = await Fleet.GetJsonAsync(gateway, "/api/tenants");
        Assert.Equal(0, Fleet.Named(tenants, "rl").GetProperty("remaining_requests").GetInt64());
        Assert.Equal(JsonValueKind.Null, Fleet.Named(tenants, "rl").GetProperty("remaining_tokens").ValueKind);
        Assert.Equal(JsonValueKind.Null, Fleet.Named(tenants, "acme").GetProperty("remaining_requests").ValueKind);
    }

    [Fact]
    public async Task Tpm_ARequestWhoseReservationExceedsTheTokensLeft_Is429_AndUsageSettlesTheReservation()
    {
        await using var gateway = await StartAsync("tpm = 1000", extra: "[limits]\ndefault_max_tokens = 900\n");

        // Without max_tokens a request reserves its prompt estimate (4 bytes of its text per token)
        // plus limits.default_max_tokens, and settles to its usage (the simulator answers at most 64 tokens).
        var noMaxJson = $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"Hello there"}]}""";
        using (var noMax = await gateway.Client.SendAsync(Post(noMaxJson)))
        {
            Assert.Equal(HttpStatusCode.OK, noMax.StatusCode);
            var reservation = PromptEstimate("Hello there") + 900;
            Assert.Equal(("1000", (1000 - reservation).ToString(CultureInfo.InvariantCulture)), (Header(noMax, "x-ratelimit-limit-tokens"), Header(noMax, "x-ratelimit-remaining-tokens")));
            Assert.False(noMax.Headers.Contains("x-ratelimit-limit-requests")); // no rpm: no request headers
        }

        // Refill alone (1000/60 tokens per s) would take ~50 s to give 800 back; the settlement does it at once.
        await TestGateway.WaitUntilAsync(async () => RemainingTokens(await Fleet.GetJsonAsync(gateway, "/api/tenants")) >= 900, "the reservation settled to the usage");

        // An embedding generates nothing: it reserves its prompt alone, not default_max_tokens.
        var embeddingJson = $$"""{"model":"{{TestGateway.Model}}","input":"Hello there"}""";
        using (var embedding = await gateway.Client.SendAsync(TestGateway.Post("v1/embeddings", embeddingJson, LimitedKey)))
        {
            Assert.Equal(HttpStatusCode.OK, embedding.StatusCode);
            Assert.True(long.Parse(Header(embedding, "x-ratelimit-remaining-tokens"), CultureInfo.InvariantCulture) >= 850);
        }

        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50);

        // The holder reserves its estimate + max_tokens 600 and keeps the reservation while it
        // streams (at least 150 tokens x 50 ms).
        var holderJson = TestGateway.Chat(stream: true, maxTokens: 600);
        using var holder = await gateway.Client.SendAsync(Post(holderJson), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        var reserved = PromptEstimate("Hello there") + 600; // TestGateway.Chat's content
        Assert.InRange(long.Parse(Header(holder, "x-ratelimit-remaining-tokens"), CultureInfo.InvariantCulture), 850 - reserved, 1000 - reserved);

        // 500 more would exceed the ~250-350 left, though the tenant has used little yet.
        using var refused = await gateway.Client.SendAsync(Chat(maxTokens: 500));
        var error = await AssertRateLimitedAsync(refused, "tokens");
        Assert.StartsWith($"Rate limit reached for {TestGateway.Model} in tenant rl on tokens per min (TPM): Limit 1000, Used ", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("1000", Header(refused, "x-ratelimit-limit-tokens"));
        Assert.True(int.Parse(Header(refused, "x-ratelimit-remaining-tokens"), CultureInfo.InvariantCulture) < 500);
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_rate_limiter_rejected_total", "tenant=\"rl\"", "reason=\"tokens\""));

        // A small one still fits beside the holder.
        using (var small = await gateway.Client.SendAsync(Chat(maxTokens: 20)))
        {
            Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        }

        // The holder goes away mid-stream: it is accounted as estimated (its prompt estimate and
        // the few chunks relayed), and the reservation settles to that estimate, not to max_tokens.
        holder.Dispose();
        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Workers[0].Stats.Aborted == 1), "the worker saw the abort");
        await TestGateway.WaitUntilAsync(async () => LimitedInFlight(await Fleet.GetJsonAsync(gateway, "/api/tenants")) == 0, "the holder left the in-flight count");
        // The lease leaves the in-flight count before it settles its tokens (LimitLease.Settle), and
        // the request is counted after both: once all five are counted (noMax, the embedding, the
        // holder, the 429, the small one), the settlement is done.
        await gateway.MetricsAfterAsync(5);
        var tenants = await Fleet.GetJsonAsync(gateway, "/api/tenants");
        Assert.Equal(1, Fleet.Named(tenants, "rl").GetProperty("estimated_requests").GetInt64());
        // The give-back lands in the holder's bin of the sliding window, which has left the current
        // second: the window's cached sum of its earlier bins counts it until the next second
        // (SlidingWindow.GiveBack, conservative by less than a second). Read 300 left so, with a
        // 150 ms pause injected in LimitLease.Settle. Wait for it, well past that second.
        await TestGateway.WaitUntilAsync(async () => RemainingTokens(await Fleet.GetJsonAsync(gateway, "/api/tenants")) > 1000 - reserved + 200, "the unused part of the holder's reservation came back");
    }

    [Fact]
    public async Task MaxInFlight1_ASecondConcurrentRequestIs429_AndTheCountComesBackWhenTheFirstEnds()
    {
        await using var gateway = await StartAsync("max_in_flight = 1", configure: o => o.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(20));
        using (var first = await gateway.Client.SendAsync(Chat(maxTokens: 40, stream: true), HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.False(first.Headers.Contains("x-ratelimit-limit-requests")); // no rpm or tpm: no headers

            using var second = await gateway.Client.SendAsync(Chat(maxTokens: 4));
            var error = await AssertRateLimitedAsync(second, "requests");
            Assert.Contains("(max_in_flight): Limit 1, In flight 1", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal("1", Header(second, "retry-after"));
            Assert.Equal(1, LimitedInFlight(await Fleet.GetJsonAsync(gateway, "/api/tenants")));

            Assert.EndsWith("data: [DONE]\n\n", await first.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await TestGateway.WaitUntilAsync(async () => LimitedInFlight(await Fleet.GetJsonAsync(gateway, "/api/tenants")) == 0, "the first request left the in-flight count");
        using var third = await gateway.Client.SendAsync(Chat(maxTokens: 4));
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_rate_limiter_rejected_total", "tenant=\"rl\"", "reason=\"in_flight\""));
    }

    [Fact]
    public async Task MaxInFlight1_ClientAbortMidStream_ReleasesTheInFlightCount()
    {
        await using var gateway = await StartAsync("max_in_flight = 1", configure: o => o.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(50));
        var aborted = await gateway.Client.SendAsync(Chat(maxTokens: 500, stream: true), HttpCompletionOption.ResponseHeadersRead);
        var stream = await aborted.Content.ReadAsStreamAsync();
        Assert.True(await stream.ReadAsync(new byte[64]) > 0);
        Assert.Equal(1, LimitedInFlight(await Fleet.GetJsonAsync(gateway, "/api/tenants")));

        aborted.Dispose(); // the client goes away mid-stream

        await TestGateway.WaitUntilAsync(() => Task.FromResult(gateway.Workers[0].Stats.Aborted == 1), "the worker saw the abort");
        await TestGateway.WaitUntilAsync(async () => LimitedInFlight(await Fleet.GetJsonAsync(gateway, "/api/tenants")) == 0, "the aborted request left the in-flight count");
        using var next = await gateway.Client.SendAsync(Chat(maxTokens: 4));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    // One worker, and tenant "rl" with the given limit lines.
    private static Task<TestGateway> StartAsync(string limits, Action<AotProxy.Simulator.SimulatorOptions>? configure = null, string extra = "") =>
        TestGateway.StartAsync(workers: 1, configure: configure, extraToml: $"""

            [[tenants]]
            name = "rl"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(LimitedKey)}"]
            {limits}

            {extra}
            """);

    private static HttpRequestMessage Chat(int maxTokens, bool stream = false) => Post(TestGateway.Chat(stream, maxTokens));

    private static HttpRequestMessage Post(string json) => TestGateway.Post("v1/chat/completions", json, LimitedKey);

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? Assert.Single(values) : throw new Xunit.Sdk.XunitException($"no {name} header");

    private static long RemainingTokens(JsonElement tenants) => Fleet.Named(tenants, "rl").GetProperty("remaining_tokens").GetInt64();

    private static int LimitedInFlight(JsonElement tenants) => Fleet.Named(tenants, "rl").GetProperty("limited_in_flight").GetInt32();

    // What the inspector estimates for a one-message prompt: its UTF-8 bytes / 4, rounded up.
    private static long PromptEstimate(string content) => (Encoding.UTF8.GetByteCount(content) + 3) / 4;

    // 429 rate_limit_exceeded in OpenAI's shape, with Retry-After; returns the `error` object.
    private static async Task<JsonElement> AssertRateLimitedAsync(HttpResponseMessage response, string type)
    {
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.True(response.Headers.Contains("retry-after"));
        Assert.True(response.Headers.Contains("x-request-id"));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        return error.Clone();
    }
}
