using System.Buffers;

namespace AotProxy.Forwarding;

internal static class BufferCopy
{
    // Copies with an explicit size hint: Kestrel's chunked response writer may answer a
    // hint-less GetSpan() with an empty span once its chunk-prefix space is reserved, which
    // BuffersExtensions.Write treats as an error.
    public static long Write(IBufferWriter<byte> output, ReadOnlySequence<byte> bytes)
    {
        foreach (var segment in bytes)
        {
            var source = segment.Span;
            while (!source.IsEmpty)
            {
                var destination = output.GetSpan(Math.Min(source.Length, 4096));
                var count = Math.Min(destination.Length, source.Length);
                source[..count].CopyTo(destination);
                output.Advance(count);
                source = source[count..];
            }
        }

        return bytes.Length;
    }
}
