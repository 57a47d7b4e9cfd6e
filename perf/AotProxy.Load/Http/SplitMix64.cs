namespace AotProxy.Load.Http;

// Sebastiano Vigna's SplitMix64 finalizer: a bijection on 64 bits, so distinct inputs give
// distinct outputs, the same on every machine and in every process (unlike System.Random's
// unseeded or HashCode's per-process seed).
internal static class SplitMix64
{
    public static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    // FNV-1a over the UTF-16 code units: a stable seed from a [[mix]] entry's name.
    public static ulong Seed(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }
}
