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
        var onB = await OnLoop(b, () => pool.RentAsync(null, Connect, CancellationToken.None).AsTask());
        Assert.Same(b, onB.Loop);
        await ExchangeAsync(onB);
        await pool.ReturnAsync(onB);

        // The only idle connection is b's: a request on a opens one on a, and b's stays idle.
        var onA = await OnLoop(a, () => pool.RentAsync(null, Connect, CancellationToken.None).AsTask());
        Assert.NotSame(onB, onA);
        Assert.Same(a, onA.Loop);
        Assert.Equal(1, pool.IdleCount);
        await ExchangeAsync(onA);
        await pool.ReturnAsync(onA);

        // a's is now the most recent: b still gets its own; off any loop, the most recent.
        var againOnB = await OnLoop(b, () => pool.RentAsync(null, Connect, CancellationToken.None).AsTask());
        var offLoop = await pool.RentAsync(null, Connect, CancellationToken.None);

        Assert.Same(onB, againOnB);
        Assert.Same(onA, offLoop);
        Assert.Equal((2, 2), (server.Connections, server.Requests));
        await againOnB.DisposeAsync();
        await offLoop.DisposeAsync();
    }

    [Fact]
    public async Task Rent_OffAnyLoop_ForAClientOnALoop_TakesOrOpensThatLoopsConnection()
    {
        // Kestrel runs a client connection's first request on the thread pool: the connection it
        // opens joins the client's loop (not the pool's own), and later requests of that client,
        // on its loop's thread or not, get it back rather than another loop's more recent one.
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        using var client = new EpollLoop("test client loop");
        using var other = new EpollLoop("test other loop");
        var pool = new UpstreamPool(new UpstreamEndpoint(server.Url("/")), new FakeTimeProvider(), _loops);
        var first = await pool.RentAsync(client, Connect, CancellationToken.None);
        Assert.Null(EpollLoop.Current);
        Assert.Same(client, first.Loop);
        await ExchangeAsync(first);
        await pool.ReturnAsync(first);
        var others = await OnLoop(other, () => pool.RentAsync(null, Connect, CancellationToken.None).AsTask());
        Assert.Same(other, others.Loop);
        await ExchangeAsync(others);
        await pool.ReturnAsync(others); // now the most recent

        var second = await pool.RentAsync(client, Connect, CancellationToken.None);
        var onItsLoop = await OnLoop(client, () => pool.RentAsync(client, Connect, CancellationToken.None).AsTask());

        await ExchangeAsync(second);
        await ExchangeAsync(onItsLoop);

        Assert.Same(first, second);
        Assert.Same(client, onItsLoop.Loop);
        Assert.Equal(1, pool.IdleCount); // other's, left alone
        Assert.Equal((3, 4), (server.Connections, server.Requests));
        await second.DisposeAsync();
        await onItsLoop.DisposeAsync();
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
