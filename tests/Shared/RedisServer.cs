using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AotProxy.Testing;

// A real Redis (Debian's redis-server; tests/run.sh installs it) on a free loopback port, with a
// temp dir of its own and no persistence, so each test gets an empty store. StopAsync and
// RestartAsync play the store going away and coming back empty (the cluster's fault tests).
// A missing redis-server fails the test: it is never skipped.
internal sealed class RedisServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    private readonly DirectoryInfo _directory;
    private Process? _process;

    private RedisServer(DirectoryInfo directory, int port)
    {
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public string Url => $"redis://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public bool IsRunning => _process is { HasExited: false };

    public static async Task<RedisServer> StartAsync()
    {
        // The port is free when we look; another process may take it before redis-server binds,
        // so a start that fails is retried on a new port (three times at most).
        for (var attempt = 1; ; attempt++)
        {
            var server = new RedisServer(Directory.CreateTempSubdirectory("aotproxy-redis-"), FreePort());
            try
            {
                await server.RestartAsync();
                return server;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                await server.DisposeAsync();
            }
        }
    }

    // Starts redis-server again on the same port, empty (it keeps nothing on disk).
    public async Task RestartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("redis-server is running already");
        }

        _process?.Dispose();
        var start = new ProcessStartInfo(Executable())
        {
            ArgumentList =
            {
                "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", _directory.FullName,
                "--daemonize", "no", "--protected-mode", "no", "--logfile", "",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (!await PingAsync())
        {
            if (_process.HasExited || deadline.Elapsed > StartTimeout)
            {
                _process.Kill();
                throw new InvalidOperationException($"redis-server on port {Port} did not answer PING within {StartTimeout.TotalSeconds} s");
            }

            await Task.Delay(20);
        }
    }

    // SIGKILL: the store is gone at once, as in a crash; nothing was persisted.
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    public async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process?.Dispose();
        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Executable()
    {
        foreach (var candidate in new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" })
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("redis-server is not installed; tests/run.sh installs it (apt-get install -y redis-server)");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
