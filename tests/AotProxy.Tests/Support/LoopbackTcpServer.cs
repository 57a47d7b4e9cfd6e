using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AotProxy.Tests.Support;

// A loopback TCP server for what a real HTTP server would not send: silence, an answer cut off,
// an endless body, bytes that are not HTTP. Each connection's request head is read, then
// `answer` writes whatever it likes and the connection is closed. Without `answer` the server
// listens but never accepts: the kernel's backlog completes the handshake, so the client
// connects, sends its request and waits for an answer that never comes.
internal sealed class LoopbackTcpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<Stream, CancellationToken, Task>? _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting = Task.CompletedTask;

    public LoopbackTcpServer(Func<Stream, CancellationToken, Task>? answer = null)
    {
        _answer = answer;
        _listener.Start();
        if (answer is not null)
        {
            _accepting = AcceptAsync();
        }
    }

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

    public static Task WriteAsync(Stream stream, string text, CancellationToken ct) =>
        stream.WriteAsync(Encoding.ASCII.GetBytes(text), ct).AsTask();

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
            try
            {
                // The request head, up to its blank line (a GET has no body).
                var head = new byte[8192];
                var filled = 0;
                while (head.AsSpan(0, filled).IndexOf("\r\n\r\n"u8) < 0)
                {
                    var read = await stream.ReadAsync(head.AsMemory(filled), _stop.Token);
                    if (read == 0 || (filled += read) == head.Length)
                    {
                        return;
                    }
                }

                await _answer!(stream, _stop.Token);
                await stream.FlushAsync(_stop.Token);
                client.Client.Shutdown(SocketShutdown.Both);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException)
            {
            }
        }
    }
}
