using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AotProxy.Testing;

// One raw HTTP/1.1 client socket on loopback, for tests that must know it is the same connection
// from request to request (HttpClient would open another one quietly). Every read is bounded.
internal sealed class KeepAliveClient : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly Socket _socket;
    private readonly List<byte> _pending = [];

    private KeepAliveClient(Socket socket) => _socket = socket;

    public static async Task<KeepAliveClient> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        return new KeepAliveClient(socket);
    }

    // The client's own address and port: what the server reports as the connection's remote endpoint.
    public EndPoint? LocalEndPoint => _socket.LocalEndPoint;

    public static string Get(string path, string headers = "") => $"GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n";

    public static string Post(string path, string body, string headers = "") =>
        $"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n{headers}\r\n{body}";

    public async Task SendAsync(string text) => await _socket.SendAsync(Encoding.UTF8.GetBytes(text));

    // The next response's status and Content-Length or chunked body (the body's bytes as text).
    public async Task<(int Status, string Head, string Body)> ReadResponseAsync()
    {
        var head = await ReadUntilAsync("\r\n\r\n");
        var status = int.Parse(head.AsSpan(9, 3), provider: System.Globalization.CultureInfo.InvariantCulture);
        var lines = head.Split("\r\n");
        var length = lines.Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Trim().Equals("content-length", StringComparison.OrdinalIgnoreCase)).Select(p => int.Parse(p[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault(-1);
        if (length >= 0)
        {
            return (status, head, Encoding.UTF8.GetString(await ReadExactlyAsync(length)));
        }

        if (!head.Contains("transfer-encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            return (status, head, "");
        }

        var body = new StringBuilder();
        while (true)
        {
            var size = Convert.ToInt32((await ReadUntilAsync("\r\n")).TrimEnd(), 16);
            body.Append(Encoding.UTF8.GetString(await ReadExactlyAsync(size)));
            await ReadUntilAsync("\r\n");
            if (size == 0)
            {
                return (status, head, body.ToString());
            }
        }
    }

    // True when the server closed the connection (the read returned 0 or a reset) within the bound.
    public async Task<bool> ClosedByServerAsync(TimeSpan? bound = null)
    {
        using var deadline = new CancellationTokenSource(bound ?? Bound);
        var buffer = new byte[256];
        try
        {
            while (true)
            {
                var read = await _socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
                if (read == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => _socket.Dispose();

    private async Task<string> ReadUntilAsync(string terminator)
    {
        while (true)
        {
            var text = Encoding.Latin1.GetString([.. _pending]);
            var at = text.IndexOf(terminator, StringComparison.Ordinal);
            if (at >= 0)
            {
                _pending.RemoveRange(0, at + terminator.Length);
                return text[..at];
            }

            await FillAsync();
        }
    }

    private async Task<byte[]> ReadExactlyAsync(int count)
    {
        while (_pending.Count < count)
        {
            await FillAsync();
        }

        var bytes = _pending.GetRange(0, count).ToArray();
        _pending.RemoveRange(0, count);
        return bytes;
    }

    private async Task FillAsync()
    {
        using var deadline = new CancellationTokenSource(Bound);
        var buffer = new byte[4096];
        var read = await _socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
        if (read == 0)
        {
            throw new IOException("the server closed the connection");
        }

        _pending.AddRange(buffer.AsSpan(0, read));
    }
}
