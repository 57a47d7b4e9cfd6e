namespace AotProxy.Load.Tests.Support;

// Tests whose numbers are latencies run alone, not beside the histogram's Parallel.For or the
// smoke test's gateway process competing for the same 2 cores.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingSensitive
{
    public const string Name = "timing-sensitive";
}
