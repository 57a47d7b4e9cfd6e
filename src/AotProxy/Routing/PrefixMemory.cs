namespace AotProxy.Routing;

// The prompt prefixes a worker served recently: a direct-mapped table of hash and timestamp,
// written on the hot path without a lock. 1,024 slots: a fleet's distinct system prompts number
// in the tens to hundreds; a collision only forgets one prefix early. A torn hash/time pair can
// at worst misjudge one request's affinity.
internal sealed class PrefixMemory
{
    private const int Slots = 1024;

    private readonly ulong[] _hashes = new ulong[Slots];
    private readonly long[] _servedAt = new long[Slots];

    public void Record(ulong hash, long timestamp)
    {
        var slot = (int)(StableHash.Mix(hash) & (Slots - 1));
        Volatile.Write(ref _servedAt[slot], timestamp);
        Volatile.Write(ref _hashes[slot], hash);
    }

    // The timestamp at which `hash` was last served here, or long.MinValue.
    public long LastServed(ulong hash)
    {
        var slot = (int)(StableHash.Mix(hash) & (Slots - 1));
        return Volatile.Read(ref _hashes[slot]) == hash ? Volatile.Read(ref _servedAt[slot]) : long.MinValue;
    }
}
