using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using AotProxy.Hosting.Epoll;
using AotProxy.Tests.Support;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

// Upstream connections on an epoll loop (server.transport = "epoll") against loopback servers:
// connect refused and timed out, a reset, 16 MiB both ways at once, a read cancelled while it
// waits, dispose twice, and where a connection's loop and a waiting read's completion are.
public sealed class EpollUpstreamTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly byte[] Get = "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"u8.ToArray();
    private readonly EpollClientLoops _loops = new();

    public void Dispose() => _loops.Dispose();

    [Fact]
    public async Task Connect_ToAPortNothingListensOn_IsRefused()
    {
        var error = await Assert.ThrowsAsync<SocketException>(() => ConnectAsync(LoopbackTcpServer.ClosedPortUrl("/"), Deadline));

        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task Connect_ToAListenerWhoseBacklogIsFull_TimesOut()
    {
        // Connections nobody accepts fill the accept queue until the kernel drops the next SYN:
        // found by a .NET connect that times out, then the epoll connect must time out as well.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var endPoint = (IPEndPoint)listener.LocalEndPoint!;
        var fillers = new List<Socket>();
        try
        {
            var (connected, full) = (0, false);
            for (var i = 0; i < 64 && !full; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                // 3 s: a dropped SYN is never answered while nobody accepts (its retries are
                // dropped too), whereas a slow host may take 500 ms to report a connect that did
                // get in (read as "full" before, and then the epoll connect got in as well).
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                try
                {
                    await filler.ConnectAsync(endPoint, wait.Token);
                    connected++;
                }
                catch (OperationCanceledException)
                {
                    full = connected > 0; // the queue holds one at least: this SYN was dropped
                }
            }

            Assert.True(full, "the listener's accept queue never filled");
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ConnectAsync(new Uri($"http://127.0.0.1:{endPoint.Port}/"), TimeSpan.FromMilliseconds(300)));
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public async Task WorkerThatResetsTheConnection_FailsTheReadWithAnIOException()
    {
        await using var server = new LoopbackTcpServer((stream, _) =>
        {
            LoopbackTcpServer.Reset(stream);
            return Task.CompletedTask;
        });
        await using var connection = await ConnectAsync(server.Url("/"), Deadline);
        using var timeout = new CancellationTokenSource(Deadline);
        await connection.SendAsync(Get, timeout.Token);

        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (true)
            {
                var read = await connection.Reader.ReadAsync(timeout.Token);
                Assert.False(read.IsCompleted, "an orderly end instead of the reset");
                connection.Reader.AdvanceTo(read.Buffer.End);
            }
        });
    }

    [Fact]
    public async Task SixteenMiB_BothWaysAtOnce_ComeBackWhole()
    {
        // 16 MiB: many times the kernel's socket buffers, so the send waits for EPOLLOUT and the
        // echo for our reads, while both go on at once.
        var payload = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var echo = Task.Run(async () =>
            {
                using var client = await listener.AcceptTcpClientAsync();
                var stream = client.GetStream();
                await stream.CopyToAsync(stream); // until our side closes
            });
            var received = new byte[payload.Length];
            var at = 0;
            await using (var connection = await ConnectAsync(new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/"), Deadline))
            {
                using var timeout = new CancellationTokenSource(Deadline);
                var sending = connection.SendAsync(payload, timeout.Token).AsTask();
                while (at < payload.Length)
                {
                    var read = await connection.Reader.ReadAsync(timeout.Token);
                    Assert.False(read.IsCompleted, $"the echo ended after {at} bytes");
                    read.Buffer.CopyTo(received.AsSpan(at));
                    at += (int)read.Buffer.Length;
                    connection.Reader.AdvanceTo(read.Buffer.End);
                }

                await sending;
            }

            Assert.Equal(SHA256.HashData(payload), SHA256.HashData(received));
            await echo.WaitAsync(Deadline);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Read_CancelledWhileItWaits_ThrowsOperationCanceled_AndTheConnectionCloses()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) =>
        {
            await release.Task.WaitAsync(ct);
            return await UpstreamPoolTests.Ok(request, stream, ct);
        });
        var connection = await ConnectAsync(server.Url("/"), Deadline);
        using var cancel = new CancellationTokenSource();
        await connection.SendAsync(Get, CancellationToken.None);
        await server.WaitUntilAsync(s => s.Requests == 1, "the worker has the request");

        var reading = connection.Reader.ReadAsync(cancel.Token).AsTask();
        Assert.False(reading.IsCompleted, "the worker has not answered");
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(Deadline));
        await connection.DisposeAsync();
        release.SetResult();
        await server.WaitUntilAsync(s => s.Closed == 1, "the connection was closed");
    }

    [Fact]
    public async Task Dispose_Twice_ClosesTheConnectionOnce()
    {
        await using var server = LoopbackTcpServer.KeepAlive(UpstreamPoolTests.Ok);
        var connection = await ConnectAsync(server.Url("/"), Deadline);
        await UpstreamPoolTests.ExchangeAsync(connection);

        await connection.DisposeAsync();
        await connection.DisposeAsync();

        await server.WaitUntilAsync(s => s.ClosedByClient == 1, "the connection was closed");
        Assert.False(connection.LooksAlive());
        Assert.Equal((1, 1), (server.Connections, server.Requests));
    }

    [Fact]
    public async Task Pick_OnALoopsThread_IsThatLoop_ElsewhereTheLoopsOwn()
    {
        using var loop = new EpollLoop("test loop");
        var picked = new TaskCompletionSource<EpollLoop>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(_ => picked.SetResult(_loops.Pick(null)), this);

        Assert.Same(loop, await picked.Task.WaitAsync(Deadline));
        Assert.Null(EpollLoop.Current);
        Assert.NotSame(loop, _loops.Pick(null));
        Assert.Same(_loops.Pick(null), _loops.Pick(null));
    }

    [Fact]
    public async Task Pick_ForARequestWithAClientLoop_IsThatLoop_OnAnyThread()
    {
        // A client connection's first request runs on the thread pool: its upstream connection
        // still joins the client's loop, not the own one (or another loop's thread).
        using var client = new EpollLoop("test client loop");
        using var other = new EpollLoop("test other loop");
        var picked = new TaskCompletionSource<EpollLoop>(TaskCreationOptions.RunContinuationsAsynchronously);
        other.Post(_ => picked.SetResult(_loops.Pick(client)), this);

        Assert.Null(EpollLoop.Current);
        Assert.Same(client, _loops.Pick(client));
        Assert.Same(client, await picked.Task.WaitAsync(Deadline));
        await using var server = LoopbackTcpServer.KeepAlive(UpstreamPoolTests.Ok);
        await using var connection = await UpstreamConnection.ConnectAsync(new UpstreamEndpoint(server.Url("/")), _loops, client, Deadline, CancellationToken.None);
        Assert.Same(client, connection.Loop);
    }

    [Fact]
    public async Task AWaitingRead_CompletesOnTheConnectionsLoop()
    {
        // The relay that awaits a read goes on on the loop that did the recv: no thread hop.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = LoopbackTcpServer.KeepAlive(async (request, stream, ct) =>
        {
            await release.Task.WaitAsync(ct);
            return await UpstreamPoolTests.Ok(request, stream, ct);
        });
        var own = _loops.Pick(null); // off a loop's thread: where the connection goes
        await using var connection = await ConnectAsync(server.Url("/"), Deadline);
        using var timeout = new CancellationTokenSource(Deadline);
        await connection.SendAsync(Get, timeout.Token);
        var reading = connection.Reader.ReadAsync(timeout.Token);
        Assert.False(reading.IsCompleted, "the worker has not answered");
        // Runs on the thread that completed the read (ExecuteSynchronously): which loop, if any.
        var completedOn = reading.AsTask().ContinueWith(static t => (t.Result, EpollLoop.Current), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        release.SetResult();
        var (read, loop) = await completedOn;

        Assert.Same(own, loop);
        Assert.StartsWith("HTTP/1.1 200", System.Text.Encoding.ASCII.GetString(read.Buffer.ToArray()), StringComparison.Ordinal);
        connection.Reader.AdvanceTo(read.Buffer.End);
    }

    private Task<UpstreamConnection> ConnectAsync(Uri url, TimeSpan timeout) =>
        UpstreamConnection.ConnectAsync(new UpstreamEndpoint(url), _loops, null, timeout, CancellationToken.None).AsTask();
}
