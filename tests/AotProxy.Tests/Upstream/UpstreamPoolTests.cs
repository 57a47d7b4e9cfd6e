using AotProxy.Hosting.Epoll;
using AotProxy.Tests.Support;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

// The keep-alive pool against a real loopback server, on a manual clock: reuse (most recent
// first), the probe of a connection idle for a second or more, scavenging at the idle timeout,
// and what is never pooled. Every close is observed on the server's side of the socket.
// EpollUpstreamPoolTests runs them all again with the connections on an epoll loop.
public class UpstreamPoolTests
{
    private static readonly TimeSpan Connect = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Rent_AfterReturns_ReusesTheConnections_MostRecentlyReturnedFirst()
    {
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        var time = new FakeTimeProvider();
        var pool = Pool(server, time);

        var a = await pool.RentAsync(null, Connect, CancellationToken.None);
        var b = await pool.RentAsync(null, Connect, CancellationToken.None);
        Assert.NotSame(a, b);
        Assert.False(a.Reused || b.Reused);
        await ExchangeAsync(a);
        await ExchangeAsync(b);
        await pool.ReturnAsync(a);
        await pool.ReturnAsync(b);
        Assert.Equal(2, pool.IdleCount);

        var first = await pool.RentAsync(null, Connect, CancellationToken.None);
        var second = await pool.RentAsync(null, Connect, CancellationToken.None);

        Assert.Same(b, first);
        Assert.Same(a, second);
        Assert.True(first.Reused && second.Reused);
        Assert.Equal(0, pool.IdleCount);
        await ExchangeAsync(first);
        await ExchangeAsync(second);
        Assert.Equal((2, 4), (server.Connections, server.Requests));
        await pool.ReturnAsync(first);
        await pool.ReturnAsync(second);
        await pool.CloseAsync();
    }

    [Fact]
    public async Task Rent_WithinASecondOfItsReturn_TakesTheConnectionUnprobed_EvenOneTheWorkerClosed()
    {
        // The worker closes after its answer, without a Connection: close: the response looks
        // reusable. Under a second idle the pool skips the probe (a syscall per request), so the
        // dead connection comes back; the forwarder's one retry on a new connection covers it.
        await using var server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) => await Ok(request, stream, ct) && false);
        var time = new FakeTimeProvider();
        var pool = Pool(server, time);
        var connection = await pool.RentAsync(null, Connect, CancellationToken.None);
        await ExchangeAsync(connection);
        await pool.ReturnAsync(connection);
        await server.WaitUntilAsync(s => s.Closed == 1, "the worker closed the connection");

        time.Advance(TimeSpan.FromSeconds(1) - TimeSpan.FromTicks(1));
        var again = await pool.RentAsync(null, Connect, CancellationToken.None);

        Assert.Same(connection, again);
        Assert.True(again.Reused);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Rent_AfterASecondIdle_ProbesTheConnection_AndDiscardsOneTheWorkerClosed()
    {
        await using var server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) => await Ok(request, stream, ct) && false);
        var time = new FakeTimeProvider();
        var pool = Pool(server, time);
        var connection = await pool.RentAsync(null, Connect, CancellationToken.None);
        await ExchangeAsync(connection);
        await pool.ReturnAsync(connection);
        await server.WaitUntilAsync(s => s.Closed == 1, "the worker closed the connection");

        time.Advance(TimeSpan.FromSeconds(1));
        var fresh = await pool.RentAsync(null, Connect, CancellationToken.None);

        Assert.NotSame(connection, fresh);
        Assert.False(fresh.Reused);
        await ExchangeAsync(fresh);
        Assert.Equal((2, 2), (server.Connections, server.Requests));
        await fresh.DisposeAsync();
    }

    [Fact]
    public async Task Rent_AfterASecondIdle_KeepsAConnectionThatPassesTheProbe()
    {
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        var time = new FakeTimeProvider();
        var pool = Pool(server, time);
        var connection = await pool.RentAsync(null, Connect, CancellationToken.None);
        await ExchangeAsync(connection);
        await pool.ReturnAsync(connection);

        time.Advance(UpstreamPool.IdleTimeout - TimeSpan.FromTicks(1));
        var again = await pool.RentAsync(null, Connect, CancellationToken.None);

        Assert.Same(connection, again);
        await ExchangeAsync(again);
        Assert.Equal((1, 2), (server.Connections, server.Requests));
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Scavenge_ClosesTheConnectionsIdleForTheIdleTimeout_AndKeepsTheYoungerOnes()
    {
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        var time = new FakeTimeProvider();
        var pool = Pool(server, time);
        var old = await pool.RentAsync(null, Connect, CancellationToken.None);
        var young = await pool.RentAsync(null, Connect, CancellationToken.None);
        await ExchangeAsync(old);
        await ExchangeAsync(young);
        await pool.ReturnAsync(old);
        time.Advance(TimeSpan.FromSeconds(3));
        await pool.ReturnAsync(young);

        // One tick short of the idle timeout for the older one: nothing goes.
        time.Advance(UpstreamPool.IdleTimeout - TimeSpan.FromSeconds(3) - TimeSpan.FromTicks(1));
        await pool.ScavengeAsync();
        Assert.Equal(2, pool.IdleCount);

        time.Advance(TimeSpan.FromTicks(1));
        await pool.ScavengeAsync();

        Assert.Equal(1, pool.IdleCount);
        await server.WaitUntilAsync(s => s.ClosedByClient == 1, "the pool closed the expired connection");
        Assert.Same(young, await pool.RentAsync(null, Connect, CancellationToken.None));
        await pool.ReturnAsync(young);

        time.Advance(UpstreamPool.IdleTimeout);
        await pool.ScavengeAsync();

        Assert.Equal(0, pool.IdleCount);
        await server.WaitUntilAsync(s => s.ClosedByClient == 2, "the pool closed the other one too");
        Assert.Equal(2, server.Connections);
    }

    [Fact]
    public async Task Return_OfAConnectionWhoseActivityTimerFired_ClosesItInsteadOfPoolingIt()
    {
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        var pool = Pool(server, new FakeTimeProvider());
        var connection = await pool.RentAsync(null, Connect, CancellationToken.None);
        await ExchangeAsync(connection);
        await connection.Activity.CancelAsync();

        await pool.ReturnAsync(connection);

        Assert.Equal(0, pool.IdleCount);
        await server.WaitUntilAsync(s => s.ClosedByClient == 1, "the connection was closed");
    }

    [Fact]
    public async Task Close_ClosesTheIdleConnections_AndOnesReturnedLaterAreNotPooled()
    {
        await using var server = LoopbackTcpServer.KeepAlive(Ok);
        var pool = Pool(server, new FakeTimeProvider());
        var idle = await pool.RentAsync(null, Connect, CancellationToken.None);
        var busy = await pool.RentAsync(null, Connect, CancellationToken.None);
        await ExchangeAsync(idle);
        await ExchangeAsync(busy);
        await pool.ReturnAsync(idle);

        await pool.CloseAsync();

        Assert.Equal(0, pool.IdleCount);
        await server.WaitUntilAsync(s => s.ClosedByClient == 1, "the idle connection was closed");
        await pool.ReturnAsync(busy);
        Assert.Equal(0, pool.IdleCount);
        await server.WaitUntilAsync(s => s.ClosedByClient == 2, "the busy one was closed when it came back");
    }

    // server.transport = "epoll": the loops the connections join; null: .NET sockets.
    private protected virtual EpollClientLoops? Loops => null;

    private UpstreamPool Pool(LoopbackTcpServer server, TimeProvider time) => new(new UpstreamEndpoint(server.Url("/")), time, Loops);

    internal static async Task<bool> Ok(LoopbackRequest request, Stream stream, CancellationToken ct)
    {
        await LoopbackTcpServer.WriteAsync(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", ct);
        return true;
    }

    // One GET, its response read to the end of the body: what the forwarder does with a
    // connection before it returns it to the pool.
    internal static async Task ExchangeAsync(UpstreamConnection connection)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await connection.SendAsync("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"u8.ToArray(), timeout.Token);
        while (true)
        {
            var read = await connection.Reader.ReadAsync(timeout.Token);
            var status = ResponseHeadParser.TryParse(read.Buffer, connection.Head, out var consumed);
            if (status == ParseStatus.Complete)
            {
                connection.Reader.AdvanceTo(consumed);
                break;
            }

            Assert.Equal(ParseStatus.Incomplete, status);
            Assert.False(read.IsCompleted, "the connection closed before a whole head");
            connection.Reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }

        Assert.Equal(200, connection.Head.StatusCode);
        connection.Body.Start(connection.Reader, connection.Head.Framing, connection.Head.ContentLength);
        while (true)
        {
            var read = await connection.Body.ReadAsync(timeout.Token);
            connection.Body.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        Assert.True(connection.Body.IsComplete);
    }
}
