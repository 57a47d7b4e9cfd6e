namespace AotProxy.Routing;

// FNV-1a, 64-bit: the same input hashes the same in every process and on every host, so
// gateways behind one load balancer agree on consistent-hash placement (string.GetHashCode is
// randomized per process). 0 is reserved for "no key".
internal static class StableHash
{
    private const ulong Offset = 14695981039346656037;
    private const ulong Prime = 1099511628211;

    public static ulong Of(ReadOnlySpan<byte> bytes)
    {
        var hash = Offset;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * Prime;
        }

        return hash == 0 ? 1 : hash;
    }

    public static ulong Of(ReadOnlySpan<char> chars)
    {
        var hash = Offset;
        foreach (var c in chars)
        {
            hash = (hash ^ (byte)c) * Prime;
            hash = (hash ^ (byte)(c >> 8)) * Prime;
        }

        return hash == 0 ? 1 : hash;
    }

    // Spreads FNV's weak low bits before they index a ring or a table (SplitMix64's finalizer).
    public static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        return x ^ (x >> 31);
    }
}
