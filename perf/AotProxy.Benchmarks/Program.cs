using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace AotProxy.Benchmarks;

internal static class Program
{
    // Fixture file names are the parameters; the default 20-character column cuts them.
    public static IConfig Config { get; } = DefaultConfig.Instance
        .WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));

    // `-- --short`: every benchmark once, in process, for CI (exit 1 if any fails). Otherwise
    // BenchmarkDotNet's own command line: --filter, --job, --list, ...
    public static int Main(string[] args)
    {
        if (args.Contains("--short"))
        {
            return ShortRun.Run(typeof(Program).Assembly, [.. args.Where(a => a != "--short")]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, Config);
        return 0;
    }
}
