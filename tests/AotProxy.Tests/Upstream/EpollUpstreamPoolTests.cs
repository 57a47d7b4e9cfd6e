using AotProxy.Hosting.Epoll;
using AotProxy.Tests.Support;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

// UpstreamPoolTests with server.transport = "epoll": every connection an EpollStream on a loop
// (the probe of an idle connection the worker closed, scavenging, close) instead of a .NET socket.
// Beside them, which loop's connection a request on a loop gets.
public sealed class EpollUpstreamPoolTests : UpstreamPoolTests, IDisposable
{
    private static readonly TimeSpan Connect = TimeSpan.FromSeconds(5);

    private readonly EpollClientLoops _loops = new();

    private protected override EpollClientLoops? Loops => _loops;

    [Fact]
    public async Task Rent_OnAnEpollLoop_TakesThatLoopsIdleConnection_AndOpensItsOwnRatherThanAnotherLoops()
    {
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        using var a = new EpollLoop("test loop a");
        using var b = new EpollLoop("test loop b");
        var pool = new UpstreamPool(new UpstreamEndpoint(server.Url("/")), new FakeTimeProvider(), _loops);
        var onB = await OnLoop(b, () => pool.RentAsync(Connect, CancellationToken.None).AsTask());
        Assert.Same(b, onB.Loop);
        await ExchangeAsync(onB);
        await pool.ReturnAsync(onB);

        // The only idle connection is b's: a request on a opens one on a, and b's stays idle.
        var onA = await OnLoop(a, () => pool.RentAsync(Connect, CancellationToken.None).AsTask());
        Assert.NotSame(onB, onA);
        Assert.Same(a, onA.Loop);
        Assert.Equal(1, pool.IdleCount);
        await ExchangeAsync(onA);
        await pool.ReturnAsync(onA);

        // a's is now the most recent: b still gets its own; off any loop, the most recent.
        var againOnB = await OnLoop(b, () => pool.RentAsync(Connect, CancellationToken.None).AsTask());
        var offLoop = await pool.RentAsync(Connect, CancellationToken.None);

        Assert.Same(onB, againOnB);
        Assert.Same(onA, offLoop);
        Assert.Equal((2, 2), (server.Connections, server.Requests));
        await againOnB.DisposeAsync();
        await offLoop.DisposeAsync();
    }

    public void Dispose() => _loops.Dispose();

    // Starts `work` on the loop's thread (where EpollLoop.Current is the loop), as a request read
    // on that loop starts its walk there.
    private static Task<T> OnLoop<T>(EpollLoop loop, Func<Task<T>> work)
    {
        var started = new TaskCompletionSource<Task<T>>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(_ =>
        {
            try
            {
                started.SetResult(work());
            }
            catch (Exception error)
            {
                started.SetException(error);
            }
        }, loop);
        return started.Task.Unwrap();
    }
}
