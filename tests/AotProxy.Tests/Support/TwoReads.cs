using System.Buffers;
using AotProxy.Accounting;

namespace AotProxy.Tests.Support;

// Bytes that arrive in two reads split at `cut`, as a socket may deliver them: what the reader
// leaves unconsumed of the first read comes again at the head of the second (as the forwarder's
// pipe keeps it), a segment boundary where it ends. Returns what it left of the second.
internal static class TwoReads
{
    // Reads one arrival; returns how far it consumed.
    public delegate SequencePosition Reader(ReadOnlySequence<byte> arrived, bool isFinal);

    public static byte[] Feed(byte[] bytes, int cut, Reader read)
    {
        var pending = Array.Empty<byte>();
        foreach (var (chunk, isFinal) in new[] { (bytes[..cut], false), (bytes[cut..], true) })
        {
            var joined = pending.Concat(chunk).ToArray();
            var arrived = Segments.Split(joined, pending.Length is > 0 and var p && p < joined.Length ? [p] : []);
            pending = arrived.Slice(read(arrived, isFinal)).ToArray();
        }

        return pending;
    }

    // A response body's usage, read by UsageJsonScanner from the two reads.
    public static UsageJsonScanner Scan(byte[] bytes, int cut)
    {
        var scanner = default(UsageJsonScanner);
        Feed(bytes, cut, (arrived, isFinal) => arrived.GetPosition(scanner.Feed(arrived, isFinal)));
        return scanner;
    }
}
