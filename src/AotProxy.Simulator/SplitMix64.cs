namespace AotProxy.Simulator;

// A PRNG whose sequence is fixed by its seed on every runtime version (System.Random promises
// that only within one version), so generated text stays byte-identical across upgrades.
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // Modulo bias is irrelevant at these ranges (< 2^16 out of 2^64).
    public int NextInt(int maxExclusive) => maxExclusive <= 1 ? 0 : (int)(Next() % (ulong)maxExclusive);

    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
}
