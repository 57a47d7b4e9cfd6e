using System.Diagnostics;

namespace AotProxy.FunctionalTests.Support;

// A tool from the machine (kubectl, docker-compose, python3, sh, promtool) run to its end: its exit code,
// stdout and stderr. A tool that is missing fails the test with the package that provides it
// (tests/run.sh installs them), never skips it.
internal sealed record ToolRun(int ExitCode, string Output, string Errors)
{
    public static async Task<ToolRun> RunAsync(
        string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, string? input = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[name] = value;
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"{file} could not be started ({e.Message}); tests/run.sh installs it (apt-get: kubernetes-client, docker-compose, haproxy, python3-yaml, prometheus)");
            throw;
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            await process.StandardInput.WriteAsync(input ?? "");
            process.StandardInput.Close();

            // 60 s: kubectl kustomize and docker-compose config take about a second here.
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{file} {string.Join(' ', args)} did not end within 60 s");
            }

            return new ToolRun(process.ExitCode, await output, await errors);
        }
    }
}
