using System.Net;

namespace AotProxy.Simulator.Tests;

public sealed class ClientAbortTests
{
    [Fact]
    public async Task ClientAbort_MidStream_CountsAbortedAndFreesTheSlot()
    {
        await using var worker = await TestWorker.StartAsync(o =>
        {
            o.MaxNumSeqs = 1;
            o.SpeedFactor = 1;
            o.DecodeTokensPerSecond = 20;
        });
        using var cts = new CancellationTokenSource();
        var response = await worker.OpenStreamAsync(TestWorker.ChatPath, TestWorker.Chat("long answer", maxTokens: 2000, stream: true, ignoreEos: true), cts.Token);
        var stream = await response.Content.ReadAsStreamAsync(cts.Token);
        Assert.True(await stream.ReadAsync(new byte[1024], cts.Token) > 0);
        Assert.Equal(1, worker.Stats.Running);

        await cts.CancelAsync();
        response.Dispose();

        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Aborted == 1 && worker.Stats.Running == 0), $"aborted={worker.Stats.Aborted} running={worker.Stats.Running}");
        Assert.Equal(0, worker.Stats.UsedBlocks);
        Assert.InRange(worker.Stats.GenerationTokens, 1, 1999);
        var (next, _) = await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("short", maxTokens: 2));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(1, worker.Stats.Completed);
    }

    [Fact]
    public async Task ClientAbort_NonStreamWhileQueued_LeavesTheQueue()
    {
        await using var worker = await TestWorker.StartAsync(o =>
        {
            o.MaxNumSeqs = 1;
            o.SpeedFactor = 1;
            o.DecodeTokensPerSecond = 20;
        });
        using var holder = new CancellationTokenSource();
        using var queued = new CancellationTokenSource();
        var running = worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("holds the slot", maxTokens: 2000, ignoreEos: true), ct: holder.Token);
        var waiting = worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("waits", maxTokens: 5), ct: queued.Token);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Running == 1 && worker.Stats.Waiting == 1));

        await queued.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Waiting == 0 && worker.Stats.Aborted == 1), $"waiting={worker.Stats.Waiting} aborted={worker.Stats.Aborted}");
        Assert.Equal(1, worker.Stats.Running);
        await holder.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Running == 0 && worker.Stats.Aborted == 2));
    }

    [Fact]
    public async Task DisposeAsync_WithStreamsInFlight_CutsThemPromptly()
    {
        var worker = await TestWorker.StartAsync(o =>
        {
            o.SpeedFactor = 1;
            o.DecodeTokensPerSecond = 20;
        });
        var response = await worker.OpenStreamAsync(TestWorker.ChatPath, TestWorker.Chat("forever", maxTokens: 5000, stream: true, ignoreEos: true));
        var body = response.Content.ReadAsStringAsync();

        await worker.Worker.DisposeAsync();

        // Uncut, the stream would run for 250 s; the bound only catches that.
        var error = await Record.ExceptionAsync(() => body.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.NotNull(error);
        Assert.IsNotType<TimeoutException>(error);
        worker.Client.Dispose();
        response.Dispose();
    }
}
