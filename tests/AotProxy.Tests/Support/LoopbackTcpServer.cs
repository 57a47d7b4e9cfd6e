using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AotProxy.Tests.Support;

// A loopback TCP server for what a real HTTP server would not send: silence, an answer cut off,
// an endless body, bytes that are not HTTP, a keep-alive connection closed or reset at a chosen
// moment. Each request (head and Content-Length body) is read, then `answer` writes whatever it
// likes; by default the connection is closed after it, a keep-alive server (KeepAlive) reads the
// next request while the answer returns true. Without `answer` the server listens but never
// accepts: the kernel's backlog completes the handshake, so the client connects, sends its
// request and waits for an answer that never comes.
//
// Counters (connections accepted, requests read, connections ended, connections the client
// closed) let a test wait for what the server saw, not for a time.
internal sealed class LoopbackTcpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<LoopbackRequest, Stream, CancellationToken, Task<bool>>? _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting = Task.CompletedTask;
    private readonly ChangeSignal _changed = new();
    private int _connectionCount;
    private int _requests;
    private int _closed;
    private int _closedByClient;

    public LoopbackTcpServer(Func<Stream, CancellationToken, Task>? answer = null)
        : this(answer is null ? null : async (_, stream, ct) =>
        {
            await answer(stream, ct);
            return false;
        })
    {
    }

    private LoopbackTcpServer(Func<LoopbackRequest, Stream, CancellationToken, Task<bool>>? answer)
    {
        _answer = answer;
        _listener.Start();
        if (answer is not null)
        {
            _accepting = AcceptAsync();
        }
    }

    public int Connections => Volatile.Read(ref _connectionCount);

    public int Requests => Volatile.Read(ref _requests);

    // Connections that have ended, closed by either side.
    public int Closed => Volatile.Read(ref _closed);

    // Connections the client closed while the server waited for a request on them.
    public int ClosedByClient => Volatile.Read(ref _closedByClient);

    // `answer` returns true to keep the connection open for the next request.
    public static LoopbackTcpServer KeepAlive(Func<LoopbackRequest, Stream, CancellationToken, Task<bool>> answer) => new(answer);

    public Uri Url(string path) => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}{path}");

    // A port that nothing listens on: bound by the OS, then released. Loopback refuses at once.
    public static Uri ClosedPortUrl(string path)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}{path}");
    }

    // UTF-8: the captured bodies hold non-ASCII text (their Content-Length counts UTF-8 bytes).
    public static Task WriteAsync(Stream stream, string text, CancellationToken ct) =>
        stream.WriteAsync(Encoding.UTF8.GetBytes(text), ct).AsTask();

    // Ends the connection with a TCP reset (RST) instead of an orderly close (FIN).
    public static void Reset(Stream stream)
    {
        var socket = ((NetworkStream)stream).Socket;
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    // Waits until the condition on the counters holds: woken by each change, bounded by 10 s.
    public Task WaitUntilAsync(Func<LoopbackTcpServer, bool> condition, string what) =>
        _changed.WaitUntilAsync(() => condition(this), TimeSpan.FromSeconds(10), what, () => $"connections {Connections}, requests {Requests}, closed {Closed}, closed by the client {ClosedByClient}");

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Task[] all;
        lock (_connections)
        {
            all = [_accepting, .. _connections];
        }

        await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private void Count(ref int counter)
    {
        Interlocked.Increment(ref counter);
        _changed.Changed();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Count(ref _connectionCount);
                lock (_connections)
                {
                    _connections.Add(ServeAsync(client, Connections));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client, int connection)
    {
        try
        {
            await ServeRequestsAsync(client, connection);
        }
        finally
        {
            client.Dispose();
            Count(ref _closed);
        }
    }

    private async Task ServeRequestsAsync(TcpClient client, int connection)
    {
        var stream = client.GetStream();
        var buffer = new byte[64 * 1024];
        var filled = 0;
        try
        {
            for (var onConnection = 1; ; onConnection++)
            {
                // The request head, up to its blank line, then its Content-Length body.
                int headEnd;
                while ((headEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
                {
                    var read = await stream.ReadAsync(buffer.AsMemory(filled), _stop.Token);
                    if (read == 0)
                    {
                        if (filled == 0)
                        {
                            Count(ref _closedByClient);
                        }

                        return;
                    }

                    if ((filled += read) == buffer.Length)
                    {
                        return;
                    }
                }

                var head = Encoding.Latin1.GetString(buffer, 0, headEnd);
                var total = headEnd + 4 + ContentLength(head);
                while (filled < total)
                {
                    var read = await stream.ReadAsync(buffer.AsMemory(filled, Math.Min(buffer.Length, total) - filled), _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    filled += read;
                }

                var request = new LoopbackRequest(Interlocked.Increment(ref _requests), connection, onConnection, head, buffer[(headEnd + 4)..total]);
                _changed.Changed();
                buffer.AsSpan(total, filled - total).CopyTo(buffer);
                filled -= total;

                var keepOpen = await _answer!(request, stream, _stop.Token);
                await stream.FlushAsync(_stop.Token);
                if (!keepOpen)
                {
                    client.Client.Shutdown(SocketShutdown.Both);
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static int ContentLength(string head)
    {
        foreach (var line in head.Split("\r\n"))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                return int.Parse(line[(colon + 1)..].Trim(), CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
