using System.Buffers;

namespace AotProxy.Tests.Support;

// The splits a fuzz target feeds a parser besides the whole input: random cut points (a
// multi-segment sequence) and random piece sizes, drawn from a Random seeded by the input
// itself, so that a failure replays from the input alone.
internal static class FuzzSplits
{
    // FNV-1a: stable across processes (HashCode is randomised per process).
    public static Random RandomFor(ReadOnlySpan<byte> input)
    {
        var hash = 2166136261u;
        foreach (var b in input)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return new Random((int)hash);
    }

    // The input as 1 to 5 segments, cut at random points (empty segments included).
    public static ReadOnlySequence<byte> RandomSegments(byte[] input, Random random)
    {
        var cuts = new int[random.Next(5)];
        for (var i = 0; i < cuts.Length; i++)
        {
            cuts[i] = random.Next(input.Length + 1);
        }

        Array.Sort(cuts);
        return Segments.Split(input, cuts);
    }

    // Lengths 1 to `max` (at least 1) that add up to `length`.
    public static IEnumerable<int> Pieces(int length, int max, Random random)
    {
        while (length > 0)
        {
            var piece = Math.Min(length, 1 + random.Next(Math.Max(1, max)));
            yield return piece;
            length -= piece;
        }
    }

    // The prefix lengths a target checks: all of them for a short input, else a random 64 and
    // the last few (the ones next to the end of the input are where framing completes).
    public static IEnumerable<int> PrefixLengths(int length, Random random)
    {
        if (length <= 1024)
        {
            return Enumerable.Range(0, length + 1);
        }

        return Enumerable.Range(0, 64).Select(_ => random.Next(length + 1)).Concat(Enumerable.Range(length - 8, 9));
    }
}
