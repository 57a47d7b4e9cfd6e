namespace AotProxy.Simulator;

// FNV-1a, 64-bit. string.GetHashCode and HashCode are randomised per process, and generated text
// must be the same in every process so that two simulators (or two test runs) agree byte for byte.
internal static class Fnv1a
{
    public const ulong OffsetBasis = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static ulong Hash(ReadOnlySpan<byte> data, ulong state = OffsetBasis)
    {
        foreach (var b in data)
        {
            state = (state ^ b) * Prime;
        }

        return state;
    }

    public static ulong Hash(ulong value, ulong state = OffsetBasis)
    {
        for (var i = 0; i < 8; i++)
        {
            state = (state ^ (byte)(value >> (i * 8))) * Prime;
        }

        return state;
    }
}
