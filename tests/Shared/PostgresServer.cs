using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AotProxy.Testing;

// A real PostgreSQL (Debian's postgresql; tests/run.sh installs it) on a free loopback port, with
// a data dir of its own made by initdb, so each test gets an empty database. PostgreSQL refuses to
// run as root: initdb and pg_ctl run as the `postgres` user (runuser) when the tests are root.
// Trust auth, on 127.0.0.1 only; fsync off: a test's data need not survive a power loss.
// StopAsync is an immediate shutdown (a crash: no checkpoint) and RestartAsync starts it again on
// the same port and data dir, with every committed row still there (the ledger's fault tests).
// A missing postgresql fails the test: it is never skipped.
internal sealed class PostgresServer : IAsyncDisposable
{
    // pg_ctl -w waits for the server to accept connections; 30 s covers a loaded 2-core machine.
    private const string WaitSeconds = "30";
    private readonly DirectoryInfo _directory;
    private readonly string _bin;

    private PostgresServer(DirectoryInfo directory, string bin, int port)
    {
        _directory = directory;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    public bool IsRunning { get; private set; }

    public const string User = "postgres";

    public const string Database = "postgres";

    public string ConnectionString =>
        $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username={User};Database={Database};Pooling=false";

    // As `[store] postgres_url` takes it.
    public string Url => $"postgres://{User}@127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/{Database}";

    private string DataDirectory => Path.Combine(_directory.FullName, "data");

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = BinDirectory();
        var directory = Directory.CreateTempSubdirectory("aotproxy-pg-");
        var server = new PostgresServer(directory, bin, FreePort());
        try
        {
            if (Environment.IsPrivilegedProcess)
            {
                await server.RunAsync("/bin/chown", ["-R", $"{User}:{User}", directory.FullName], asPostgres: false);
            }

            await server.RunAsync(Path.Combine(bin, "initdb"), ["-D", server.DataDirectory, "-U", User, "-E", "UTF8", "--auth=trust", "--no-sync", "--no-instructions"]);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        // The port is free when we look; another process may take it before postgres binds, so a
        // start that fails is retried on a new port (three times at most), with the same data dir.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await server.RestartAsync();
                return server;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                server = new PostgresServer(directory, bin, FreePort());
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }
    }

    // Starts postgres on the same port and data dir: what was committed before a stop is there.
    public async Task RestartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("postgres is running already");
        }

        var options = string.Join(' ',
            "-p", Port.ToString(CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1",
            "-c", $"unix_socket_directories={_directory.FullName}",
            // fsync off: a commit is written to the OS, not flushed to the disk, which an immediate
            // stop (a process crash) keeps. synchronous_commit stays on: off, a commit acknowledged
            // before its WAL was written is lost by an immediate stop (this class's own test saw it).
            "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200");
        await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-l", Path.Combine(_directory.FullName, "postgres.log"), "-o", options, "-w", "-t", WaitSeconds, "start"]);
        IsRunning = true;
    }

    // An immediate shutdown: every server process quits at once, without a checkpoint, as in a
    // crash; connections are cut. The next start recovers from the WAL.
    public async Task StopAsync()
    {
        if (!IsRunning)
        {
            return;
        }

        await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "-t", WaitSeconds, "stop"]);
        IsRunning = false;
    }

    // The server's log, for a failing test's message.
    public string Log()
    {
        var path = Path.Combine(_directory.FullName, "postgres.log");
        return File.Exists(path) ? File.ReadAllText(path) : string.Empty;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (InvalidOperationException)
        {
        }

        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    // Runs a PostgreSQL tool (as the postgres user when we are root) and throws
    // InvalidOperationException with its output when it fails.
    private async Task RunAsync(string executable, string[] arguments, bool asPostgres = true)
    {
        var start = new ProcessStartInfo(asPostgres && Environment.IsPrivilegedProcess ? "/usr/sbin/runuser" : executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // initdb and postgres warn when they cannot read the working directory (a root-owned checkout).
            WorkingDirectory = _directory.FullName,
        };
        if (asPostgres && Environment.IsPrivilegedProcess)
        {
            foreach (var argument in (string[])["-u", User, "--", executable])
            {
                start.ArgumentList.Add(argument);
            }
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{executable} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{Path.GetFileName(executable)} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await output}{await error}{Log()}");
        }
    }

    // /usr/lib/postgresql/<major>/bin, the newest major installed.
    private static string BinDirectory()
    {
        const string root = "/usr/lib/postgresql";
        if (Directory.Exists(root))
        {
            var newest = Directory.GetDirectories(root)
                .Select(d => Path.Combine(d, "bin"))
                .Where(bin => File.Exists(Path.Combine(bin, "initdb")) && File.Exists(Path.Combine(bin, "pg_ctl")))
                .OrderByDescending(bin => int.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), NumberStyles.None, CultureInfo.InvariantCulture, out var major) ? major : 0)
                .FirstOrDefault();
            if (newest is not null)
            {
                return newest;
            }
        }

        throw new FileNotFoundException("postgresql is not installed (no /usr/lib/postgresql/*/bin/initdb); tests/run.sh installs it (apt-get install -y postgresql)");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
