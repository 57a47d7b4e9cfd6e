namespace AotProxy.Admin.Contracts;

// The runtime's own counters, so that a load run can divide allocated bytes by requests and
// check for Gen2 collections (perf/compare.sh reads them before and after each run).
internal sealed record RuntimeReport(long AllocatedBytes, int Gen0Collections, int Gen1Collections, int Gen2Collections, long HeapBytes, long WorkingSetBytes, double CpuSeconds)
{
    public static RuntimeReport Read()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return new RuntimeReport(
            GC.GetTotalAllocatedBytes(precise: false),
            GC.CollectionCount(0),
            GC.CollectionCount(1),
            GC.CollectionCount(2),
            GC.GetTotalMemory(forceFullCollection: false),
            Environment.WorkingSet,
            process.TotalProcessorTime.TotalSeconds);
    }
}
