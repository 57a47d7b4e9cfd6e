using System.Net;
using System.Net.Sockets;
using System.Text;

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
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Completed == 1), $"completed={worker.Stats.Completed}"); // counted after its flush
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
        // The holder runs before the other is sent: sent back to back, the second request could
        // reach the worker first on a loaded host, run its 5 tokens, and never be seen waiting.
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Running == 1), $"running={worker.Stats.Running}");
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

    // A killed gateway (or a client that aborts) resets its connections while tokens stream to
    // them. Each cut is a client gone, counted as aborted; none is an unhandled exception in the
    // log (it was: ArgumentOutOfRangeException from BeginEvent, in about half of 200 cuts).
    [Fact]
    public async Task StreamsResetMidStream_CountAsAbortedAndLogNoError()
    {
        const int Streams = 200;
        var log = new LogCapture();
        await using var worker = await TestWorker.StartAsync(o => o.MaxNumSeqs = Streams, log);
        var body = TestWorker.Chat("a long answer", maxTokens: 4000, stream: true, ignoreEos: true);
        var request = Encoding.UTF8.GetBytes(
            $"POST {TestWorker.ChatPath} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        // Each client reads a different amount (2 KB to 22 KB), then resets the connection as a
        // killed process's kernel does (linger 0: RST, not FIN).
        await Task.WhenAll(Enumerable.Range(0, Streams).Select(async i =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, worker.Worker.BaseUri.Port), deadline.Token);
            await socket.SendAsync(request, deadline.Token);
            var buffer = new byte[1024];
            for (var read = 0; read < 2_000 + (i * 100);)
            {
                var n = await socket.ReceiveAsync(buffer, deadline.Token);
                Assert.True(n > 0, $"stream {i} ended after {read} bytes");
                read += n;
            }

            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }));

        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Aborted == Streams && worker.Stats.Running == 0), $"aborted={worker.Stats.Aborted} running={worker.Stats.Running}\n{log.Problems}");
        Assert.True(log.Problems.Length == 0, log.Problems);
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
