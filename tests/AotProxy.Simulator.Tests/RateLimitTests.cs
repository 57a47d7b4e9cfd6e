using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

// --rpm/--tpm: the simulator as a hosted API that answers 429 above its limits.
public sealed class RateLimitTests
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void TryAdmit_Burst_GetsOneSecondsWorthThen429UntilTheRefill()
    {
        var limit = Limit(rpm: 120); // 2 per second

        Assert.Null(limit.TryAdmit(1));
        Assert.Null(limit.TryAdmit(1));
        var refused = limit.TryAdmit(1);

        Assert.NotNull(refused);
        Assert.Equal("requests", refused.Value.Type);
        Assert.Equal(TimeSpan.FromMilliseconds(500), refused.Value.RetryAfter);
        _clock.Advance(TimeSpan.FromMilliseconds(499));
        Assert.NotNull(limit.TryAdmit(1));
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Null(limit.TryAdmit(1));
        Assert.NotNull(limit.TryAdmit(1));
    }

    [Fact]
    public void TryAdmit_EvenlySpacedAtTheRate_IsNeverRefusedWithinTheWindow()
    {
        var limit = Limit(rpm: 120);
        var started = _clock.GetTimestamp();

        for (var i = 0; i < 120; i++)
        {
            Assert.Null(limit.TryAdmit(1));
            _clock.Advance(TimeSpan.FromMilliseconds(i % 2 == 0 ? 400 : 600)); // jitter around 500 ms
        }

        Assert.Equal(TimeSpan.FromSeconds(60), _clock.GetElapsedTime(started));
        Assert.Null(limit.TryAdmit(1)); // the first start has just left the window
    }

    [Fact]
    public void TryAdmit_SixtySecondWindowFull_RefusesUntilTheOldestLeaves()
    {
        var limit = Limit(rpm: 6000); // 100 at once: only the 60 s window binds below
        for (var second = 0; second < 60; second++)
        {
            if (second > 0)
            {
                _clock.Advance(TimeSpan.FromSeconds(1));
            }

            for (var i = 0; i < 100; i++)
            {
                Assert.Null(limit.TryAdmit(1));
            }
        }

        _clock.Advance(TimeSpan.FromMilliseconds(500)); // t = 59.5 s: 6,000 started in the last 60 s
        var refused = limit.TryAdmit(1);

        Assert.NotNull(refused);
        Assert.Equal(0, refused.Value.Remaining);
        Assert.Equal(TimeSpan.FromMilliseconds(500), refused.Value.RetryAfter);
        _clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Null(limit.TryAdmit(1));
    }

    [Fact]
    public void TryAdmit_Tokens_RefusesAReservationThatWouldPassTpm()
    {
        var limit = Limit(tpm: 1000);

        Assert.Null(limit.TryAdmit(600));
        _clock.Advance(TimeSpan.FromSeconds(10));
        var refused = limit.TryAdmit(500);

        Assert.NotNull(refused);
        Assert.Equal("tokens", refused.Value.Type);
        Assert.Equal(400, refused.Value.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(50), refused.Value.RetryAfter);
        Assert.Null(limit.TryAdmit(400));
    }

    [Fact]
    public async Task Post_AboveRpm_Answers429WithOpenAisBodyAndCountsIt()
    {
        await using var worker = await TestWorker.StartAsync(o => o.RequestsPerMinute = 60); // 1 at once
        using var first = await worker.Client.SendAsync(TestWorker.Post(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 2)));
        using var second = await worker.Client.SendAsync(TestWorker.Post(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 2)));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), second.Headers.RetryAfter?.Delta);
        Assert.Equal("60", second.Headers.GetValues("x-ratelimit-limit-requests").Single());
        using var body = JsonDocument.Parse(await second.Content.ReadAsStringAsync());
        var error = body.RootElement.GetProperty("error");
        Assert.Equal("requests", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.StartsWith("Rate limit reached for", error.GetProperty("message").GetString());
        Assert.Equal(1, worker.Stats.RateLimited);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Completed == 1), $"completed={worker.Stats.Completed}"); // counted after its flush
    }

    [Fact]
    public async Task Post_WithoutLimits_NeverAnswers429()
    {
        await using var worker = await TestWorker.StartAsync();
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => worker.Client.SendAsync(TestWorker.Post(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 2)))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(0, worker.Stats.RateLimited);
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    private SimulatedRateLimit Limit(long rpm = 0, long tpm = 0) =>
        SimulatedRateLimit.For(new SimulatorOptions { RequestsPerMinute = rpm, TokensPerMinute = tpm, TimeProvider = _clock })!;
}
