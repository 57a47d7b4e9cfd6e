using System.Buffers;

namespace AotProxy.Benchmarks;

// A ReadOnlySequence of fixed-size segments, built once in setup: the shape a PipeReader hands
// over when a body arrives in small reads.
internal sealed class SegmentedSequence : ReadOnlySequenceSegment<byte>
{
    private SegmentedSequence(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public static ReadOnlySequence<byte> Create(byte[] bytes, int segmentSize)
    {
        var first = new SegmentedSequence(bytes.AsMemory(0, Math.Min(segmentSize, bytes.Length)), 0);
        var last = first;
        for (var start = segmentSize; start < bytes.Length; start += segmentSize)
        {
            var next = new SegmentedSequence(bytes.AsMemory(start, Math.Min(segmentSize, bytes.Length - start)), start);
            last.Next = next;
            last = next;
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
