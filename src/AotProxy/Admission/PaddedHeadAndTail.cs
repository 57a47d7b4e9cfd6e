using System.Runtime.InteropServices;

namespace AotProxy.Admission;

// A ring's head (consumers) and tail (producers), each on its own cache line: a producer's CAS on
// the tail then does not evict the line a consumer is spinning on, and neither shares a line
// with the ring's other fields. 128 bytes, not 64: x64's adjacent-line prefetcher pulls lines in
// pairs (the runtime's PaddingHelpers.CACHE_LINE_SIZE makes the same choice).
[StructLayout(LayoutKind.Explicit, Size = 3 * CacheLine)]
internal struct PaddedHeadAndTail
{
    private const int CacheLine = 128;

    [FieldOffset(1 * CacheLine)]
    public long Head;

    [FieldOffset(2 * CacheLine)]
    public long Tail;
}
