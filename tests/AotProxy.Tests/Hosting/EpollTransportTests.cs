using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Hosting;
using AotProxy.Hosting.Epoll;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Hosting;

// The epoll transport (server.transport = "epoll") under a real Kestrel on loopback sockets.
public sealed class EpollTransportTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Echo_ReturnsTheBody_AndTheClientsAddress()
    {
        await using var listener = await StartAsync(async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            context.Response.Headers["x-peer"] = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
            context.Response.Headers["x-local"] = $"{context.Connection.LocalIpAddress}:{context.Connection.LocalPort}";
            await context.Response.Body.WriteAsync(body.ToArray());
        });

        using var client = new TcpClient(AddressFamily.InterNetwork);
        await client.ConnectAsync(listener.EndPoint);
        var stream = client.GetStream();
        for (var i = 0; i < 3; i++)
        {
            var payload = $"hello {i}";
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {payload.Length}\r\n\r\n{payload}"));
            var (head, body) = await ReadResponseAsync(stream);
            Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
            Assert.Equal(payload, Encoding.ASCII.GetString(body));
            Assert.Contains($"x-peer: {client.Client.LocalEndPoint}", head, StringComparison.Ordinal);
            Assert.Contains($"x-local: {listener.EndPoint}", head, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task LargeBody_BothWays_IsEchoedWhole_UnderBackPressure()
    {
        // 16 MiB: many times the input pipe's 1 MiB and the output pipe's 64 KiB pause thresholds,
        // and the kernel's socket buffers, so both directions stop and resume.
        var payload = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
        await using var listener = await StartAsync(context =>
        {
            context.Response.ContentLength = context.Request.ContentLength;
            return context.Request.Body.CopyToAsync(context.Response.Body);
        });
        using var client = new TcpClient(AddressFamily.InterNetwork);
        await client.ConnectAsync(listener.EndPoint);
        var stream = client.GetStream();
        using var cts = new CancellationTokenSource(Deadline);

        // The client writes and reads at once: the echo comes back while the body still goes out.
        var sending = Task.Run(async () =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {payload.Length}\r\n\r\n"), cts.Token);
            await stream.WriteAsync(payload, cts.Token);
        });
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        var headEnd = -1;
        while (headEnd < 0 || received.Length - headEnd < payload.Length)
        {
            var n = await stream.ReadAsync(buffer, cts.Token);
            Assert.True(n > 0, "the connection closed before the whole echo");
            received.Write(buffer, 0, n);
            if (headEnd < 0 && received.ToArray().AsSpan().IndexOf("\r\n\r\n"u8) is var at and >= 0)
            {
                headEnd = at + 4;
                Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(received.ToArray(), 0, headEnd), StringComparison.Ordinal);
            }
        }

        await sending;
        Assert.Equal(SHA256.HashData(payload), SHA256.HashData(received.ToArray().AsSpan(headEnd)));
    }

    [Fact]
    public async Task PeerCloseMidRequest_FailsTheBodyRead_AndAbortsTheRequest()
    {
        var failed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = await StartAsync(async context =>
        {
            context.RequestAborted.Register(() => aborted.TrySetResult());
            try
            {
                await context.Request.Body.CopyToAsync(Stream.Null);
                await context.Response.WriteAsync("whole");
            }
            catch (Exception ex)
            {
                failed.TrySetResult(ex);
            }
        });

        using (var client = new TcpClient(AddressFamily.InterNetwork))
        {
            await client.ConnectAsync(listener.EndPoint);
            await client.GetStream().WriteAsync("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly ten b"u8.ToArray());
        }

        var error = await failed.Task.WaitAsync(Deadline);
        Assert.IsAssignableFrom<IOException>(error);
        await aborted.Task.WaitAsync(Deadline);
        await AssertServesAsync(listener);
    }

    [Fact]
    public async Task Abort_ClosesTheClientsConnection_AndTheListenerServesOn()
    {
        await using var listener = await StartAsync(context =>
        {
            if (context.Request.Path == "/abort")
            {
                context.Abort();
                return Task.CompletedTask;
            }

            return context.Response.WriteAsync("ok");
        });

        using var client = new TcpClient(AddressFamily.InterNetwork);
        await client.ConnectAsync(listener.EndPoint);
        var stream = client.GetStream();
        await stream.WriteAsync("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var buffer = new byte[256];
        using var cts = new CancellationTokenSource(Deadline);
        try
        {
            Assert.Equal(0, await stream.ReadAsync(buffer, cts.Token));
        }
        catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
            // A reset is a close too.
        }

        await AssertServesAsync(listener);
    }

    [Fact]
    public async Task ManyConnections_AtOnce_EachServedTwiceOnItsKeepAlive()
    {
        const int Connections = 300;
        await using var listener = await StartAsync(context => context.Response.WriteAsync(context.Request.Path.Value!));
        var clients = new List<TcpClient>();
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                var client = new TcpClient(AddressFamily.InterNetwork);
                clients.Add(client);
                await client.ConnectAsync(listener.EndPoint);
            }

            using var cts = new CancellationTokenSource(Deadline);
            await Task.WhenAll(clients.Select(async (client, i) =>
            {
                var stream = client.GetStream();
                for (var round = 0; round < 2; round++)
                {
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /c{i}r{round} HTTP/1.1\r\nHost: x\r\n\r\n"), cts.Token);
                    var (head, body) = await ReadResponseAsync(stream, cts.Token);
                    Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
                    Assert.Equal($"/c{i}r{round}", Encoding.ASCII.GetString(body));
                }
            }));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task H2c_ServesConcurrentStreamsOnOneConnection()
    {
        await using var listener = await StartAsync(
            async context =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                await context.Response.WriteAsync($"{context.Request.Protocol} {body.Length}");
            },
            HttpProtocols.Http2);
        using var http = new HttpClient { Timeout = Deadline, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var answers = await Task.WhenAll(Enumerable.Range(1, 50).Select(async i =>
        {
            using var content = new ByteArrayContent(new byte[i * 1000]);
            using var response = await http.PostAsync(new Uri(listener.BaseUri, $"/s{i}"), content);
            Assert.Equal(HttpVersion.Version20, response.Version);
            return await response.Content.ReadAsStringAsync();
        }));
        Assert.Equal(Enumerable.Range(1, 50).Select(i => $"HTTP/2 {i * 1000}"), answers);
    }

    [Fact]
    public async Task Stop_WaitsForTheRequestInFlight_ThenRefusesNewConnections()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = await StartAsync(async context =>
        {
            started.TrySetResult();
            await release.Task;
            await context.Response.WriteAsync("finished");
        });
        var endPoint = listener.EndPoint;
        using var client = new TcpClient(AddressFamily.InterNetwork);
        await client.ConnectAsync(endPoint);
        var stream = client.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        await started.Task.WaitAsync(Deadline);

        using var grace = new CancellationTokenSource(Deadline);
        var stopping = listener.StopAsync(grace.Token);
        Assert.False(stopping.IsCompleted);
        release.SetResult();
        var (head, body) = await ReadResponseAsync(stream);
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("finished", Encoding.ASCII.GetString(body));
        await stopping.WaitAsync(Deadline);
        await listener.DisposeAsync();

        using var late = new TcpClient(AddressFamily.InterNetwork);
        var refused = await Assert.ThrowsAsync<SocketException>(() => late.ConnectAsync(endPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task Connection_DisposedTwice_ClosesItsFdOnce()
    {
        // The fd number a closed connection had is the next socket's: a second close would cut
        // that socket (found by the functional suite: Kestrel's connection limit disposes twice).
        await using var listener = await new EpollTransportFactory(loopCount: 1).BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        using var client = new TcpClient(AddressFamily.InterNetwork);
        await client.ConnectAsync((IPEndPoint)listener.EndPoint);
        var connection = await listener.AcceptAsync().AsTask().WaitAsync(Deadline);
        Assert.NotNull(connection);
        await connection.DisposeAsync();

        await using var other = await StartAsync(context => context.Response.WriteAsync("ok"));
        using var second = new TcpClient(AddressFamily.InterNetwork);
        await second.ConnectAsync(other.EndPoint);
        await connection.DisposeAsync();
        var stream = second.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var (head, body) = await ReadResponseAsync(stream);
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        Assert.Equal("ok", Encoding.ASCII.GetString(body));
    }

    private static Task<KestrelListener> StartAsync(RequestDelegate handler, HttpProtocols protocols = HttpProtocols.Http1) =>
        KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), handler, NullLoggerFactory.Instance, new ListenerOptions { Protocols = protocols, Transport = ListenerTransport.Epoll });

    private static async Task AssertServesAsync(KestrelListener listener)
    {
        using var http = new HttpClient { Timeout = Deadline };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(listener.BaseUri)).StatusCode);
    }

    // One HTTP/1.1 response with a Content-Length or chunked body (the body de-chunked).
    private static async Task<(string Head, byte[] Body)> ReadResponseAsync(NetworkStream stream, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Deadline);
        var data = new List<byte>();
        var buffer = new byte[8192];
        while (true)
        {
            var text = Encoding.ASCII.GetString(data.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var head = text[..end];
                var rest = data.Skip(end + 4).ToArray();
                var length = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                if (length is not null && rest.Length >= int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture))
                {
                    return (head, rest);
                }

                if (length is null && Dechunk(rest) is { } body)
                {
                    return (head, body);
                }
            }

            var n = await stream.ReadAsync(buffer, deadline.Token);
            Assert.True(n > 0, "the connection closed before the whole response");
            data.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }

    private static byte[]? Dechunk(byte[] data)
    {
        var body = new List<byte>();
        var at = 0;
        while (true)
        {
            var text = Encoding.ASCII.GetString(data, at, data.Length - at);
            var line = text.IndexOf("\r\n", StringComparison.Ordinal);
            if (line < 0)
            {
                return null;
            }

            var size = Convert.ToInt32(text[..line], 16);
            if (size == 0)
            {
                return text.Length >= line + 4 ? body.ToArray() : null;
            }

            if (data.Length - at < line + 2 + size + 2)
            {
                return null;
            }

            body.AddRange(data.AsSpan(at + line + 2, size).ToArray());
            at += line + 2 + size + 2;
        }
    }
}
