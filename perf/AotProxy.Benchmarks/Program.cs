using BenchmarkDotNet.Running;

namespace AotProxy.Benchmarks;

internal static class Program
{
    // `-- --short`: every benchmark once, in process, for CI (exit 1 if any fails). Otherwise
    // BenchmarkDotNet's own command line: --filter, --job, --list, ...
    public static int Main(string[] args)
    {
        if (args.Contains("--short"))
        {
            return ShortRun.Run(typeof(Program).Assembly, [.. args.Where(a => a != "--short")]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
