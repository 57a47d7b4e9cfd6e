using System.Reflection;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace AotProxy.Benchmarks;

// CI's smoke run: each benchmark case runs a handful of times in this process (no generated
// projects to build, so it takes seconds on 2 cores). No timing is judged; a benchmark that
// throws, or one that BenchmarkDotNet could not run, fails the run.
internal static class ShortRun
{
    public static int Run(Assembly assembly, string[] args)
    {
        var job = Job.Dry
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithId("Short");
        var config = Program.Config
            .AddJob(job)
            .WithOptions(ConfigOptions.JoinSummary | ConfigOptions.DisableLogFile);

        // Without --filter the switcher would ask on the console which benchmarks to run.
        var runArgs = args.Contains("--filter") ? args : [.. args, "--filter", "*"];
        Summary[] summaries;
        try
        {
            summaries = [.. BenchmarkSwitcher.FromAssembly(assembly).Run(runArgs, config)];
        }
        catch (Exception ex)
        {
            // BenchmarkDotNet itself gave up (seen with the no-emit toolchain on a throwing benchmark).
            Console.Error.WriteLine($"benchmark run failed: {ex}");
            return 1;
        }

        var failures = summaries.SelectMany(Failures).ToArray();
        var cases = summaries.Sum(s => s.BenchmarksCases.Length);
        foreach (var failure in failures)
        {
            Console.Error.WriteLine($"benchmark failed: {failure}");
        }

        Console.WriteLine($"short run: {cases} benchmark cases, {failures.Length} failed");
        return cases == 0 || failures.Length > 0 ? 1 : 0;
    }

    private static IEnumerable<string> Failures(Summary summary)
    {
        foreach (var error in summary.ValidationErrors)
        {
            yield return error.Message;
        }

        foreach (var benchmark in summary.BenchmarksCases)
        {
            var report = summary[benchmark];
            if (report is null || !report.Success || report.ExecuteResults.Any(r => r.ExitCode is not 0))
            {
                yield return benchmark.DisplayInfo;
            }
        }
    }
}
