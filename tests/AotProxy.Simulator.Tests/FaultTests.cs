using System.Net;
using System.Text;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class FaultTests
{
    [Fact]
    public async Task Http500Rate_One_Returns500WithVllmNestedError()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.Http500Rate = 1.0;

        var (response, body) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi"));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(JsonShape.Paths(Fixtures.Text("openai/error_vllm_nested.json")), JsonShape.Paths(body));
        using var json = JsonDocument.Parse(body);
        Assert.Equal("InternalServerError", json.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(500, json.RootElement.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(1, worker.Stats.FaultsInjected);
        Assert.Equal(0, worker.Stats.PromptTokens);
    }

    [Fact]
    public async Task Http500Rate_Half_FailsSomeButNotAll()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.Http500Rate = 0.5;
        var statuses = new List<HttpStatusCode>();

        // P(all 60 alike) = 2^-59: this cannot flake.
        for (var i = 0; i < 60; i++)
        {
            var (response, _) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 1));
            statuses.Add(response.StatusCode);
        }

        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Contains(HttpStatusCode.InternalServerError, statuses);
    }

    [Fact]
    public async Task Hang_ClientCancels_RequestNeverAnsweredAndCountedAborted()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.Hang = true;
        using var cts = new CancellationTokenSource();

        // Cancel once the worker holds the request: a fixed client timeout could fire before a
        // loaded machine delivered it, and then there is nothing to abort.
        var send = worker.Client.SendAsync(TestWorker.Post(TestWorker.ChatPath, TestWorker.Chat("hi")), cts.Token);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.FaultsInjected == 1), "the worker never received the request");
        Assert.False(send.IsCompleted, "a hanging worker answered");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send);

        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Aborted == 1), $"aborted={worker.Stats.Aborted}");
        Assert.Equal(1, worker.Stats.FaultsInjected);
        worker.Faults.Hang = false;
        var (response, _) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("hi", maxTokens: 2));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ResetAfterTokens_MidStream_ClientSeesIOExceptionAfterThoseTokens()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.ResetAfterTokens = 3;
        using var response = await worker.OpenStreamAsync(TestWorker.ChatPath, TestWorker.Chat("reset me", maxTokens: 50, stream: true, ignoreEos: true));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var received = new StringBuilder();
        var buffer = new byte[4096];

        var error = await Record.ExceptionAsync(async () =>
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                received.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
        });

        Assert.IsAssignableFrom<IOException>(error);
        // Role chunk + 3 tokens are flushed before the cut; TCP may still lose some of them.
        var events = received.ToString().Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.InRange(events.Length, 0, 1 + 3);
        Assert.DoesNotContain("[DONE]", received.ToString(), StringComparison.Ordinal);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Resets == 1 && worker.Stats.Running == 0), $"resets={worker.Stats.Resets} running={worker.Stats.Running}");
        Assert.Equal(0, worker.Stats.Aborted);
    }

    [Fact]
    public async Task ResetAfterTokens_NonStream_ConnectionDropsBeforeResponse()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.ResetAfterTokens = 2;

        var error = await Record.ExceptionAsync(() => worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("reset me", maxTokens: 20, ignoreEos: true)));

        Assert.IsType<HttpRequestException>(error);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Resets == 1 && worker.Stats.Running == 0));
    }

    // On a clock that moves only to the timers the worker armed: the fast request is served on
    // steps shorter than the slow one's delay, so the slow one cannot have its answer by then
    // unless the delay was skipped; and it gets it only once the clock reached the delay.
    [Fact]
    public async Task FirstByteDelay_SlowRequestAnsweredAfterLaterFastOne()
    {
        var clock = new TimerClock();
        var delay = TimeSpan.FromSeconds(3);
        await using var worker = await TestWorker.StartAsync(o => o.TimeProvider = clock);
        worker.Faults.FirstByteDelay = delay;
        var sentAt = clock.GetUtcNow();
        var slow = worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("slow", maxTokens: 2));
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.RequestsTotal == 1));
        worker.Faults.FirstByteDelay = TimeSpan.Zero;

        var fast = worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("fast", maxTokens: 2));
        Assert.True(await clock.StepUntilAsync(() => fast.IsCompleted, delay / 10), "the undelayed request was not answered");

        Assert.Equal(HttpStatusCode.OK, (await fast).Response.StatusCode);
        Assert.False(slow.IsCompleted, "The delayed request answered before the undelayed one.");
        Assert.True(await clock.StepUntilAsync(() => slow.IsCompleted, delay), "the delayed request was not answered");
        var (late, _) = await slow;
        Assert.Equal(HttpStatusCode.OK, late.StatusCode);
        Assert.True(clock.GetUtcNow() - sentAt >= delay, $"answered {clock.GetUtcNow() - sentAt} after it was sent");
    }

    [Fact]
    public async Task InterTokenDelay_SlowStreamFinishesAfterLaterFastStream()
    {
        var clock = new TimerClock();
        var delay = TimeSpan.FromMilliseconds(600);
        await using var worker = await TestWorker.StartAsync(o => o.TimeProvider = clock);
        worker.Faults.InterTokenDelay = delay;
        var sentAt = clock.GetUtcNow();
        var slow = worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("slow stream", maxTokens: 5, stream: true, ignoreEos: true));
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.RequestsTotal == 1));
        worker.Faults.InterTokenDelay = TimeSpan.Zero;

        var fast = worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("fast stream", maxTokens: 5, stream: true, ignoreEos: true));
        Assert.True(await clock.StepUntilAsync(() => fast.IsCompleted, delay / 10), "the unslowed stream did not finish");

        Assert.EndsWith("data: [DONE]\n\n", (await fast).Body, StringComparison.Ordinal);
        Assert.False(slow.IsCompleted, "The slowed stream finished before the unslowed one.");
        Assert.True(await clock.StepUntilAsync(() => slow.IsCompleted, delay), "the slowed stream did not finish");
        var (_, slowBody) = await slow;
        Assert.Equal(1 + 5 + 1, SseBody.DataPayloads(slowBody).Count);
        Assert.True(clock.GetUtcNow() - sentAt >= delay * 4, $"5 tokens in {clock.GetUtcNow() - sentAt}"); // a delay between each two
    }

    [Fact]
    public async Task UnhealthyHealth_Returns503UntilCleared()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.UnhealthyHealth = true;

        using var sick = await worker.Client.GetAsync("/health");
        worker.Faults.UnhealthyHealth = false;
        using var well = await worker.Client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, sick.StatusCode);
        Assert.Equal(HttpStatusCode.OK, well.StatusCode);
    }

    [Fact]
    public void SimulatorFaults_OutOfRangeRate_Throws()
    {
        var faults = new SimulatorFaults();

        Assert.Throws<ArgumentOutOfRangeException>(() => faults.Http500Rate = 1.5);
        Assert.Throws<ArgumentOutOfRangeException>(() => faults.Http500Rate = double.NaN);
        faults.ResetAfterTokens = -7;
        Assert.Equal(-1, faults.ResetAfterTokens);
    }
}
