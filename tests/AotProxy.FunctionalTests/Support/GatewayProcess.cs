using System.Diagnostics;
using System.Text.RegularExpressions;

namespace AotProxy.FunctionalTests.Support;

// The aotproxy executable as a separate process: the AOT binary named by AOTPROXY_BINARY (CI
// publishes it first and sets AOTPROXY_REQUIRE_AOT=1), otherwise the JIT build of the same
// program from this test's output folder, so the tests run on machines without clang too.
internal sealed partial class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly SemaphoreSlim _lines = new(0);
    private readonly DirectoryInfo _workingDirectory;

    private GatewayProcess(Process process, DirectoryInfo workingDirectory)
    {
        _process = process;
        _workingDirectory = workingDirectory;
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static bool IsAot => Environment.GetEnvironmentVariable("AOTPROXY_BINARY") is { Length: > 0 };

    public int Id => _process.Id;

    public Uri? DataUri { get; private set; }

    public Uri? AdminUri { get; private set; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    public static GatewayProcess Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    // environment: variables set for the process only (e.g. the runtime's socket thread count).
    public static GatewayProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var binary = Environment.GetEnvironmentVariable("AOTPROXY_BINARY");
        if (string.IsNullOrEmpty(binary) && Environment.GetEnvironmentVariable("AOTPROXY_REQUIRE_AOT") == "1")
        {
            throw new InvalidOperationException("AOTPROXY_REQUIRE_AOT=1 but AOTPROXY_BINARY is not set");
        }

        var start = string.IsNullOrEmpty(binary)
            ? new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "aotproxy.dll") } }
            : new ProcessStartInfo(binary);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // A working directory of its own: what the process writes there (`demo`'s usage ledger)
        // goes away with it instead of piling up beside the tests.
        var workingDirectory = Directory.CreateTempSubdirectory("aotproxy-process-");
        start.WorkingDirectory = workingDirectory.FullName;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        return new GatewayProcess(Process.Start(start)!, workingDirectory);
    }

    public static async Task<(int ExitCode, string Output)> RunToEndAsync(params string[] args)
    {
        await using var process = Start(args);
        var exitCode = await process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        return (exitCode, process.Output);
    }

    // `aotproxy serve` on `toml`, written to aotproxy.toml in `directory`, once it is ready.
    public static async Task<GatewayProcess> ServeAsync(string directory, string toml)
    {
        var config = Path.Combine(directory, "aotproxy.toml");
        await File.WriteAllTextAsync(config, toml);
        var gateway = Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        return gateway;
    }

    // `aotproxy simulate`'s base URL, from its "aotproxy simulate ready: … url=…" line.
    public async Task<string> WaitForSimulatorUrlAsync()
    {
        var line = await WaitForLineAsync("aotproxy simulate ready:", TimeSpan.FromSeconds(30));
        return line[(line.IndexOf("url=", StringComparison.Ordinal) + 4)..].Trim();
    }

    // Waits for "aotproxy ready: listen=… admin=…" and takes the bound addresses from it.
    public async Task WaitForReadyAsync()
    {
        var line = await WaitForLineAsync("aotproxy ready:", TimeSpan.FromSeconds(30));
        var match = ReadyLine().Match(line);
        Assert.True(match.Success, line);
        DataUri = new Uri(match.Groups[1].Value);
        AdminUri = new Uri(match.Groups[2].Value);
    }

    public async Task<string> WaitForLineAsync(string contains, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var seen = 0;
        while (true)
        {
            lock (_output)
            {
                for (; seen < _output.Count; seen++)
                {
                    if (_output[seen].Contains(contains, StringComparison.Ordinal))
                    {
                        return _output[seen];
                    }
                }
            }

            if (_process.HasExited)
            {
                Assert.Fail($"aotproxy exited ({_process.ExitCode}) before printing '{contains}':\n{Output}");
            }

            try
            {
                await _lines.WaitAsync(TimeSpan.FromMilliseconds(200), deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"no line containing '{contains}' within {timeout}:\n{Output}");
            }
        }
    }

    public void SendSigterm()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    // SIGKILL: no shutdown code runs (the crash a ledger must survive).
    public void Kill() => _process.Kill();

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"aotproxy did not exit within {timeout}:\n{Output}");
        }

        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _lines.Dispose();
        try
        {
            _workingDirectory.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }

        _lines.Release();
    }

    [GeneratedRegex(@"listen=(\S+) admin=(\S+)")]
    private static partial Regex ReadyLine();
}
