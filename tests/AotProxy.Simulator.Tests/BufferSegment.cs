using System.Buffers;

namespace AotProxy.Simulator.Tests;

// Builds multi-segment ReadOnlySequences, the shape Kestrel hands a large body in.
internal sealed class BufferSegment : ReadOnlySequenceSegment<byte>
{
    private BufferSegment(ReadOnlyMemory<byte> memory) => Memory = memory;

    public static ReadOnlySequence<byte> Split(byte[] data, int segmentSize)
    {
        var first = new BufferSegment(data.AsMemory(0, Math.Min(segmentSize, data.Length)));
        var last = first;
        for (var offset = segmentSize; offset < data.Length; offset += segmentSize)
        {
            var next = new BufferSegment(data.AsMemory(offset, Math.Min(segmentSize, data.Length - offset))) { RunningIndex = last.RunningIndex + last.Memory.Length };
            last.Next = next;
            last = next;
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
