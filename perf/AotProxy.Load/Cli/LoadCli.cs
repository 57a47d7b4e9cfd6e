using System.Text.Json;
using AotProxy.Load.Profiles;
using AotProxy.Load.Recording;
using AotProxy.Load.Reporting;
using AotProxy.Load.Scheduling;

namespace AotProxy.Load.Cli;

// The whole command: parse, run, report. Returns the exit code (0 pass, 2 threshold failed,
// 1 usage or profile error), so tests call it in-process.
internal static class LoadCli
{
    public const int Passed = 0;
    public const int UsageError = 1;
    public const int ThresholdFailed = 2;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter errors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (!LoadArgs.TryParse(args, out var parsed, out var error) || parsed is null)
        {
            await errors.WriteLineAsync($"aotproxy-load: {error}\n{LoadArgs.Usage}").ConfigureAwait(false);
            return UsageError;
        }

        var loaded = ProfileLoader.LoadFile(parsed.Profile);
        if (loaded.Profile is not { } profile)
        {
            foreach (var problem in loaded.Errors)
            {
                await errors.WriteLineAsync($"{parsed.Profile}: {problem}").ConfigureAwait(false);
            }

            return UsageError;
        }

        var log = parsed.RequestsFile is null ? null : new RequestLog();
        var runner = new LoadRunner(profile, new RunOptions
        {
            Log = log,
            Target = parsed.Target,
            Key = parsed.Key,
            DurationScale = parsed.DurationScale,
            RateScale = parsed.RateScale,
        });
        await errors.WriteLineAsync($"aotproxy-load: {profile.Name} -> {runner.Target} for {runner.Plan.TotalSeconds:0.##} s").ConfigureAwait(false);
        var result = await runner.RunAsync(cancellationToken).ConfigureAwait(false);
        var report = ReportBuilder.Build(result);
        var markdown = MarkdownReport.Render(report, profile.Description);
        await output.WriteAsync(markdown).ConfigureAwait(false);

        var dir = parsed.OutDir ?? DefaultOutDir();
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, profile.Name + ".md"), markdown, cancellationToken).ConfigureAwait(false);
        var json = JsonSerializer.Serialize(report, ReportJsonContext.Default.LoadReport);
        await File.WriteAllTextAsync(Path.Combine(dir, profile.Name + ".json"), json + "\n", cancellationToken).ConfigureAwait(false);
        await errors.WriteLineAsync($"aotproxy-load: wrote {Path.Combine(dir, profile.Name)}.md and .json").ConfigureAwait(false);
        if (log is not null && parsed.RequestsFile is { } requestsFile)
        {
            var writer = new StreamWriter(requestsFile, append: false);
            await using (writer.ConfigureAwait(false))
            {
                await log.WriteCsvAsync(writer, [.. profile.Mix.Select(m => m.Name)], cancellationToken).ConfigureAwait(false);
            }

            await errors.WriteLineAsync($"aotproxy-load: wrote {log.Count} requests to {requestsFile}").ConfigureAwait(false);
        }

        return report.Passed ? Passed : ThresholdFailed;
    }

    // perf/reports in the checkout the command runs in (found by AotProxy.sln), else under the
    // current directory.
    private static string DefaultOutDir()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AotProxy.sln")))
            {
                return Path.Combine(dir.FullName, "perf", "reports");
            }
        }

        return Path.Combine(Environment.CurrentDirectory, "perf", "reports");
    }
}
