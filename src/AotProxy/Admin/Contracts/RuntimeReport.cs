namespace AotProxy.Admin.Contracts;

// The runtime's own counters, so that a load run can divide allocated bytes by requests and
// check for Gen2 collections (perf/compare.sh reads them before and after each run).
// The GC's committed bytes and its heap after the last collection (live objects plus fragmentation;
// the pinned object heap, where Kestrel's buffers live, on its own) split RSS into managed and
// native parts (perf/connections.sh reads them at each of its readings). GcSettings are the GC's
// own view of its configuration (the knobs compiled into the binary, DOTNET_GC* variables): the
// proof that a setting reached the GC.
internal sealed record RuntimeReport(long AllocatedBytes, int Gen0Collections, int Gen1Collections, int Gen2Collections, long HeapBytes, long WorkingSetBytes, double CpuSeconds,
    long GcCommittedBytes, long GcHeapAfterLastBytes, long GcFragmentedBytes, long GcPinnedHeapAfterLastBytes, Dictionary<string, string> GcSettings)
{
    public static RuntimeReport Read()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        var gc = GC.GetGCMemoryInfo(GCKind.Any);
        return new RuntimeReport(
            GC.GetTotalAllocatedBytes(precise: false),
            GC.CollectionCount(0),
            GC.CollectionCount(1),
            GC.CollectionCount(2),
            GC.GetTotalMemory(forceFullCollection: false),
            Environment.WorkingSet,
            process.TotalProcessorTime.TotalSeconds,
            gc.TotalCommittedBytes,
            gc.HeapSizeBytes,
            gc.FragmentedBytes,
            gc.GenerationInfo[4].SizeAfterBytes,
            GC.GetConfigurationVariables().ToDictionary(static p => p.Key, static p => Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "", StringComparer.Ordinal));
    }
}
