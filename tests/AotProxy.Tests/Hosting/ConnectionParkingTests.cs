using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using AotProxy.Hosting;
using AotProxy.Hosting.Epoll;
using AotProxy.Hosting.Parking;
using AotProxy.Http;
using AotProxy.Tests.Configuration;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Hosting;

// Real Kestrel on loopback with the parking middleware, driven through raw client sockets so that
// each test knows it is on the same connection. Parks happen on Kestrel's heartbeat (about once a
// second) after park_idle_after; the tests wait for the parked count, never for a fixed time.
public sealed class ConnectionParkingTests : IAsyncDisposable
{
    private static readonly TimeSpan IdleAfter = TimeSpan.FromMilliseconds(100);
    private readonly ConnectionParking _parking = new(IdleAfter);
    private readonly ConcurrentQueue<WeakReference> _kestrelConnections = new();
    private readonly ConcurrentQueue<WeakReference> _transports = new();
    private KestrelListener? _listener;

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task IdleConnection_ParksAndServesItsNextRequests(ListenerTransport transport)
    {
        var endPoint = await StartAsync(transport: transport);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);

        await client.SendAsync(KeepAliveClient.Post("/echo", "hello"));
        Assert.Equal((200, "/echo:5"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);

        await client.SendAsync(KeepAliveClient.Post("/echo", "again!"));
        Assert.Equal((200, "/echo:6"), Answer(await client.ReadResponseAsync()));
        Assert.Equal(0, _parking.Parked);

        // Each idle period parks again, and a GET (no body) may park as well.
        await WaitUntilParkedAsync(1, parks: 2);
        await client.SendAsync(KeepAliveClient.Get("/plain"));
        Assert.Equal((200, "/plain:0"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1, parks: 3);
    }

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task PipelinedRequests_AreAnsweredInOrder_BeforeAndAfterAPark(ListenerTransport transport)
    {
        var endPoint = await StartAsync(transport: transport);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);

        await client.SendAsync(KeepAliveClient.Get("/a") + KeepAliveClient.Post("/echo", "four") + KeepAliveClient.Get("/c"));
        Assert.Equal((200, "/a:0"), Answer(await client.ReadResponseAsync()));
        Assert.Equal((200, "/echo:4"), Answer(await client.ReadResponseAsync()));
        Assert.Equal((200, "/c:0"), Answer(await client.ReadResponseAsync()));

        await WaitUntilParkedAsync(1);
        await client.SendAsync(KeepAliveClient.Post("/echo", "seven!!") + KeepAliveClient.Get("/d"));
        Assert.Equal((200, "/echo:7"), Answer(await client.ReadResponseAsync()));
        Assert.Equal((200, "/d:0"), Answer(await client.ReadResponseAsync()));
    }

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task SlowUpload_PausingLongerThanParkIdleAfter_IsNotCut(ListenerTransport transport)
    {
        var endPoint = await StartAsync(transport: transport);
        using var upload = await KeepAliveClient.ConnectAsync(endPoint);
        await upload.SendAsync("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345");

        // A second connection idle at a boundary since after the upload paused: once it has
        // parked, the upload has waited past park_idle_after too.
        using var control = await KeepAliveClient.ConnectAsync(endPoint);
        await control.SendAsync(KeepAliveClient.Get("/control"));
        Assert.Equal((200, "/control:0"), Answer(await control.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);
        Assert.Equal(1, _parking.Parks);

        await upload.SendAsync("67890");
        Assert.Equal((200, "/echo:10"), Answer(await upload.ReadResponseAsync()));
    }

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task UnreadBody_DrainedAfterAPause_IsNotTakenForARequestBoundary(ListenerTransport transport)
    {
        var endPoint = await StartAsync(transport: transport);
        using var upload = await KeepAliveClient.ConnectAsync(endPoint);
        // The handler answers without reading the body (none of it has come yet); Kestrel drains
        // it after the response.
        await upload.SendAsync("POST /ignore HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n");
        Assert.Equal((200, "/ignore:0"), Answer(await upload.ReadResponseAsync()));

        using var control = await KeepAliveClient.ConnectAsync(endPoint);
        await control.SendAsync(KeepAliveClient.Get("/control"));
        Assert.Equal((200, "/control:0"), Answer(await control.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);
        Assert.Equal(1, _parking.Parks);

        await upload.SendAsync("1234567890" + KeepAliveClient.Get("/next"));
        Assert.Equal((200, "/next:0"), Answer(await upload.ReadResponseAsync()));
    }

    [Fact]
    public async Task ConnectionClose_StillClosesTheConnection()
    {
        var endPoint = await StartAsync();
        using var client = await KeepAliveClient.ConnectAsync(endPoint);

        await client.SendAsync(KeepAliveClient.Get("/bye", "Connection: close\r\n"));
        Assert.Equal((200, "/bye:0"), Answer(await client.ReadResponseAsync()));
        Assert.True(await client.ClosedByServerAsync(), "the connection stayed open after Connection: close");
        Assert.Equal(0, _parking.Parks);
    }

    [Fact]
    public async Task BadRequest_ClosesTheConnection()
    {
        var endPoint = await StartAsync();
        using var client = await KeepAliveClient.ConnectAsync(endPoint);

        await client.SendAsync("NOT HTTP\r\n\r\n");
        Assert.Equal(400, (await client.ReadResponseAsync()).Status);
        Assert.True(await client.ClosedByServerAsync(), "the connection stayed open after a 400");
        Assert.Equal(0, _parking.Parks);
    }

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task ParkedConnection_ClosesAtTheKeepAliveTimeout(ListenerTransport transport)
    {
        var endPoint = await StartAsync(o => o.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(3), transport);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);
        await client.SendAsync(KeepAliveClient.Get("/once"));
        var clock = Stopwatch.StartNew();
        Assert.Equal((200, "/once:0"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);

        Assert.True(await client.ClosedByServerAsync(TimeSpan.FromSeconds(20)), "a parked connection outlived the keep-alive timeout");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"closed after {clock.Elapsed}, before the 3 s keep-alive timeout");
        Assert.True(await TestConfig.WaitUntil(() => _parking.Parked == 0), $"parked={_parking.Parked}");
    }

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task ParkedConnections_CountAgainstMaxConnections_AndTheClientClosingOneFreesIt(ListenerTransport transport)
    {
        var endPoint = await StartAsync(o => o.Limits.MaxConcurrentConnections = 1, transport);
        var first = await KeepAliveClient.ConnectAsync(endPoint);
        await first.SendAsync(KeepAliveClient.Get("/first"));
        Assert.Equal((200, "/first:0"), Answer(await first.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);

        // Still counted while parked: a second connection is refused.
        using (var refused = await KeepAliveClient.ConnectAsync(endPoint))
        {
            Assert.True(await refused.ClosedByServerAsync(), "a connection past max_connections was served");
        }

        first.Dispose();
        Assert.True(await TestConfig.WaitUntil(() => _parking.Parked == 0), $"parked={_parking.Parked}");

        // The slot comes back once Kestrel has released the closed connection (bounded attempts).
        var served = false;
        for (var attempt = 0; attempt < 300 && !served; attempt++) // 30 s: a loaded host may take seconds
        {
            using var next = await KeepAliveClient.ConnectAsync(endPoint);
            await next.SendAsync(KeepAliveClient.Get("/next"));
            try
            {
                served = Answer(await next.ReadResponseAsync()) == (200, "/next:0");
            }
            catch (IOException)
            {
                await Task.Delay(100); // refused: the release is still on its way
            }
        }

        Assert.True(served, "the closed parked connection never gave its slot back");
    }

    [Theory]
    [InlineData(ListenerTransport.Sockets)]
    [InlineData(ListenerTransport.Epoll)]
    public async Task Shutdown_WithParkedConnections_CompletesWithoutWaitingForTheGrace(ListenerTransport transport)
    {
        var endPoint = await StartAsync(transport: transport);
        using var one = await KeepAliveClient.ConnectAsync(endPoint);
        using var two = await KeepAliveClient.ConnectAsync(endPoint);
        foreach (var client in new[] { one, two })
        {
            await client.SendAsync(KeepAliveClient.Get("/x"));
            Assert.Equal((200, "/x:0"), Answer(await client.ReadResponseAsync()));
        }

        await WaitUntilParkedAsync(2);
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var clock = Stopwatch.StartNew();
        await _listener!.StopAsync(grace.Token);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"stopping took {clock.Elapsed}: parked connections were not closed on shutdown");
        Assert.False(grace.IsCancellationRequested);
        Assert.True(await one.ClosedByServerAsync() && await two.ClosedByServerAsync(), "a parked connection stayed open after shutdown");
        Assert.Equal(0, _parking.Parked);
    }

    // Issue 22: a parked connection holds none of Kestrel's per-connection objects. Kestrel's
    // connection (its lifetime feature) of the first session is garbage once it parked, and the
    // next request is served by a fresh one on the same socket.
    [Fact]
    public async Task Parking_EndsKestrelsWholeConnection_AndTheNextRequestGetsAFreshOne()
    {
        var endPoint = await StartAsync();
        using var client = await KeepAliveClient.ConnectAsync(endPoint);
        await client.SendAsync(KeepAliveClient.Get("/kestrel"));
        Assert.Equal((200, "/kestrel:0"), Answer(await client.ReadResponseAsync()));
        Assert.True(_kestrelConnections.TryDequeue(out var first));
        await WaitUntilParkedAsync(1);

        Assert.True(await CollectedAsync(first), "the parked connection still holds Kestrel's connection");

        await client.SendAsync(KeepAliveClient.Get("/kestrel"));
        Assert.Equal((200, "/kestrel:0"), Answer(await client.ReadResponseAsync()));
        Assert.True(_kestrelConnections.TryDequeue(out var second));
        Assert.True(second.IsAlive);
        Assert.Equal(0, _parking.Parked);
    }

    // The same parking on the epoll transport: parks, serves again, closes at the keep-alive timeout.
    [Fact]
    public async Task OnEpoll_AParkedConnection_ServesAgain_AndClosesAtTheKeepAliveTimeout()
    {
        var endPoint = await StartAsync(o => o.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(3), ListenerTransport.Epoll);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);
        await client.SendAsync(KeepAliveClient.Post("/echo", "hello"));
        Assert.Equal((200, "/echo:5"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);

        await client.SendAsync(KeepAliveClient.Post("/echo", "again!") + KeepAliveClient.Get("/plain"));
        Assert.Equal((200, "/echo:6"), Answer(await client.ReadResponseAsync()));
        Assert.Equal((200, "/plain:0"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1, parks: 2);

        Assert.True(await client.ClosedByServerAsync(TimeSpan.FromSeconds(20)), "a parked epoll connection outlived the keep-alive timeout");
        Assert.True(await TestConfig.WaitUntil(() => _parking.Parked == 0), $"parked={_parking.Parked}");
    }

    // Issue 22: on epoll a parked connection is its socket alone: the EpollConnection that served it
    // (its pipes, send loop, features) is garbage, and the next request is read by a new one on the
    // same socket, which reports the same endpoints.
    [Fact]
    public async Task OnEpoll_AParkedConnection_NoLongerHoldsItsEpollConnection_AndResumesWithTheSameEndpoints()
    {
        var endPoint = await StartAsync(transport: ListenerTransport.Epoll);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);
        var peer = $"{client.LocalEndPoint}|{endPoint}";
        await client.SendAsync(KeepAliveClient.Get("/transport"));
        Assert.Equal((200, peer), Answer(await client.ReadResponseAsync()));
        Assert.True(_transports.TryDequeue(out var first));
        await WaitUntilParkedAsync(1);

        Assert.True(await CollectedAsync(first), "the parked connection still holds its EpollConnection");

        await client.SendAsync(KeepAliveClient.Get("/transport"));
        Assert.Equal((200, peer), Answer(await client.ReadResponseAsync()));
        Assert.True(_transports.TryDequeue(out var second));
        Assert.True(second.IsAlive);
        Assert.Equal(0, _parking.Parked);
        Assert.Equal(1, _parking.Parks);
    }

    // Issue 22 (hop22): every request sees the loop of the client connection it came on, the first
    // (which Kestrel runs on the thread pool) as the next ones, and after a park (a new
    // EpollConnection and session on the same socket) too: the upstream connection a request opens
    // joins that loop, so one thread reads the worker's answer and writes the client.
    [Fact]
    public async Task OnEpoll_EveryRequest_SeesItsClientConnectionsLoop_BeforeAndAfterAPark()
    {
        var endPoint = await StartAsync(transport: ListenerTransport.Epoll);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);
        var answers = new List<(int, string)>();
        for (var i = 0; i < 3; i++)
        {
            if (i == 2)
            {
                await WaitUntilParkedAsync(1);
            }

            await client.SendAsync(KeepAliveClient.Get("/loop"));
            answers.Add(Answer(await client.ReadResponseAsync()));
        }

        var (status, loop) = answers[0];
        Assert.Equal(200, status);
        Assert.DoesNotContain("none", loop, StringComparison.Ordinal);
        Assert.All(answers, answer => Assert.Equal((200, loop), answer));
        Assert.Equal(1, _parking.Parks);
    }

    // The socket's next bytes resume it: a request that arrives in pieces (the first piece alone
    // resumes it), then, parked again, three pipelined requests in one write.
    [Fact]
    public async Task OnEpoll_AParkedSocket_ResumesWithARequestInPieces_AndWithPipelinedRequests()
    {
        var endPoint = await StartAsync(transport: ListenerTransport.Epoll);
        using var client = await KeepAliveClient.ConnectAsync(endPoint);
        await client.SendAsync(KeepAliveClient.Get("/first"));
        Assert.Equal((200, "/first:0"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);

        await client.SendAsync("POST /echo HT");
        await WaitUntilParkedAsync(0, parks: 1);
        await client.SendAsync("TP/1.1\r\nHost: test\r\nContent-Length: 9\r\n\r\npie");
        await client.SendAsync("ces");
        await client.SendAsync("!!!");
        Assert.Equal((200, "/echo:9"), Answer(await client.ReadResponseAsync()));

        await WaitUntilParkedAsync(1, parks: 2);
        await client.SendAsync(KeepAliveClient.Get("/a") + KeepAliveClient.Post("/echo", "four") + KeepAliveClient.Get("/c"));
        Assert.Equal((200, "/a:0"), Answer(await client.ReadResponseAsync()));
        Assert.Equal((200, "/echo:4"), Answer(await client.ReadResponseAsync()));
        Assert.Equal((200, "/c:0"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1, parks: 3);
    }

    // A parked socket whose client closes (FIN) is closed and leaves the parked count.
    [Fact]
    public async Task OnEpoll_AParkedSocket_ClosedByItsClient_IsNoLongerParked()
    {
        var endPoint = await StartAsync(transport: ListenerTransport.Epoll);
        var client = await KeepAliveClient.ConnectAsync(endPoint);
        await client.SendAsync(KeepAliveClient.Get("/x"));
        Assert.Equal((200, "/x:0"), Answer(await client.ReadResponseAsync()));
        await WaitUntilParkedAsync(1);

        client.Dispose();
        Assert.True(await TestConfig.WaitUntil(() => _parking.Parked == 0), $"parked={_parking.Parked}");
        Assert.Equal(1, _parking.Parks);
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
        {
            await _listener.DisposeAsync();
        }
    }

    private static (int, string) Answer((int Status, string Head, string Body) response) => (response.Status, response.Body);

    private async Task<IPEndPoint> StartAsync(Action<KestrelServerOptions>? configure = null, ListenerTransport transport = ListenerTransport.Sockets)
    {
        _listener = await KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), HandleAsync, NullLoggerFactory.Instance, new ListenerOptions { Configure = configure, Parking = _parking, Transport = transport });
        return _listener.EndPoint;
    }

    private async Task WaitUntilParkedAsync(long parked, long? parks = null) =>
        Assert.True(
            await TestConfig.WaitUntil(() => _parking.Parked == parked && (parks is null || _parking.Parks == parks), TimeSpan.FromSeconds(15)),
            $"parked={_parking.Parked} parks={_parking.Parks}, waited for parked={parked} parks={parks}");

    // "/echo" reads the body as the gateway does (RequestBody, which marks it read); "/ignore"
    // never reads it. The answer is the path and the body's length.
    private async Task HandleAsync(HttpContext context)
    {
        var length = 0;
        if (context.Request.Path == "/kestrel")
        {
            _kestrelConnections.Enqueue(new WeakReference(context.Features.Get<IConnectionLifetimeNotificationFeature>()!));
        }

        if (context.Request.Path == "/transport")
        {
            // The transport's connection (EpollConnection is its own transport feature) and the endpoints it reports.
            _transports.Enqueue(new WeakReference(context.Features.Get<IConnectionTransportFeature>()!));
            var peer = Encoding.UTF8.GetBytes($"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}|{context.Connection.LocalIpAddress}:{context.Connection.LocalPort}");
            context.Response.ContentLength = peer.Length;
            await context.Response.Body.WriteAsync(peer);
            return;
        }

        if (context.Request.Path == "/loop")
        {
            // The client connection's loop (its epoll fd), and whether the request runs on another loop's thread.
            var loop = context.Features.Get<EpollLoop>();
            var current = EpollLoop.Current;
            var answer = Encoding.UTF8.GetBytes($"{loop?.EpollFd.ToString(CultureInfo.InvariantCulture) ?? "none"}|{(current is null || current == loop ? "same" : "other")}");
            context.Response.ContentLength = answer.Length;
            await context.Response.Body.WriteAsync(answer);
            return;
        }

        if (context.Request.Path == "/echo")
        {
            // No token: a body read with one is never taken for a boundary, so this tests the bytes rule.
            var (body, _) = await RequestBody.ReadAsync(context.Request, 1 << 20, CancellationToken.None);
            using (body)
            {
                length = body?.Length ?? -1;
            }
        }

        var bytes = Encoding.UTF8.GetBytes($"{context.Request.Path}:{length}");
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes);
    }

    // True once a full collection has freed what `weak` points to (waits on the collector, not a clock).
    private static Task<bool> CollectedAsync(WeakReference weak) =>
        TestConfig.WaitUntil(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return !weak.IsAlive;
        });
}
