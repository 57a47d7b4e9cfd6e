using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AotProxy.FunctionalTests.Support;

// A worker at the TCP level, for what Kestrel would never send: a stale keep-alive connection,
// a broken head, bad chunking, interim responses. It reads each request (head and
// Content-Length body) and answers with whatever bytes the test scripts. The gateway's own
// control-plane requests (GET /health, GET /metrics) get a fixed answer and are not counted:
// Requests and Connections count only what the data plane sent (the gateway's warm-up requests
// included), and Seen lists those requests in the order they arrived.
internal sealed class RawWorker : IAsyncDisposable
{
    private static readonly byte[] HealthOk = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"u8.ToArray();
    private static readonly byte[] HealthDown = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"u8.ToArray();
    private static readonly byte[] NoMetrics = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"u8.ToArray();

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<RawRequest, RawReply> _reply;
    private readonly List<RawRequest> _seen = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private int _requests;
    private int _connectionCount;
    private byte[]? _lastHead;
    private volatile bool _healthy = true;

    // reply: given the request's number (1, 2, ...).
    public RawWorker(Func<int, RawReply> reply)
        : this((RawRequest request) => reply(request.Number))
    {
    }

    private RawWorker(Func<RawRequest, RawReply> reply)
    {
        _reply = reply;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    // reply: given the request (its number, method, path and x-request-id).
    public static RawWorker Answering(Func<RawRequest, RawReply> reply) => new(reply);

    public Uri BaseUri => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    public int Connections => Volatile.Read(ref _connectionCount);

    public int Requests => Volatile.Read(ref _requests);

    // False: GET /health answers 503 (the gateway's active health check sees it down).
    public bool Healthy
    {
        get => _healthy;
        set => _healthy = value;
    }

    // The data-plane requests so far, in arrival order.
    public RawRequest[] Seen
    {
        get
        {
            lock (_seen)
            {
                return [.. _seen];
            }
        }
    }

    // The raw bytes of the last data-plane request head, as they came off the socket (no decoding).
    public byte[]? LastHead => Volatile.Read(ref _lastHead);

    public string Section(string model, string name = "raw") => $"""

        [[workers]]
        name = "{name}"
        url = "{BaseUri}"
        models = ["{model}"]
        """;

    public static byte[] Json(string body, string extraHeaders = "") =>
        Encoding.UTF8.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n{extraHeaders}\r\n{body}");

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await Task.WhenAll([_accepting, .. _connections]).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                lock (_connections)
                {
                    _connections.Add(ServeAsync(client));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var buffer = new byte[64 * 1024];
            var filled = 0;
            var counted = false;
            try
            {
                while (true)
                {
                    // One request: the head up to the blank line, then Content-Length bytes.
                    int headEnd;
                    while ((headEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
                    {
                        var read = await stream.ReadAsync(buffer.AsMemory(filled), _stop.Token);
                        if (read == 0)
                        {
                            return;
                        }

                        filled += read;
                    }

                    var head = Encoding.ASCII.GetString(buffer, 0, headEnd);
                    var rawHead = buffer.AsSpan(0, headEnd + 4).ToArray();
                    var length = head.Split("\r\n").Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Select(p => int.Parse(p[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                    var total = headEnd + 4 + length;
                    while (filled < total)
                    {
                        var read = await stream.ReadAsync(buffer.AsMemory(filled), _stop.Token);
                        if (read == 0)
                        {
                            return;
                        }

                        filled += read;
                    }

                    buffer.AsSpan(total, filled - total).CopyTo(buffer);
                    filled -= total;

                    if (head.StartsWith("GET /health ", StringComparison.Ordinal) || head.StartsWith("GET /metrics ", StringComparison.Ordinal))
                    {
                        await stream.WriteAsync(head.StartsWith("GET /health ", StringComparison.Ordinal) ? (_healthy ? HealthOk : HealthDown) : NoMetrics, _stop.Token);
                        continue;
                    }

                    Volatile.Write(ref _lastHead, rawHead);
                    if (!counted)
                    {
                        counted = true;
                        Interlocked.Increment(ref _connectionCount);
                    }

                    var request = RawRequest.Parse(Interlocked.Increment(ref _requests), head);
                    lock (_seen)
                    {
                        _seen.Add(request);
                    }

                    var reply = _reply(request);
                    for (var i = 0; i < reply.Parts.Length; i++)
                    {
                        if (i > 0 && reply.BeforeLaterParts is { } gate)
                        {
                            await gate.WaitAsync(_stop.Token);
                        }

                        var part = reply.Parts[i];
                        await stream.WriteAsync(part, _stop.Token);
                        await stream.FlushAsync(_stop.Token);
                        if (reply.PauseBetweenParts > TimeSpan.Zero)
                        {
                            await Task.Delay(reply.PauseBetweenParts, _stop.Token);
                        }
                    }

                    if (reply.CloseAfter)
                    {
                        client.Client.Shutdown(SocketShutdown.Both);
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException)
            {
            }
        }
    }
}
