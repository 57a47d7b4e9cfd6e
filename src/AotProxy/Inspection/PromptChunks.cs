using System.Buffers;
using System.IO.Hashing;

namespace AotProxy.Inspection;

// The prompt's raw bytes (the `messages` array's JSON, or `prompt`, or `input`) cut into fixed
// 256-byte chunks, each hashed chained onto the one before: chunk i's hash stands for the bytes
// 0..i*256+255, so a worker that holds chunk i's KV holds the whole prefix up to it. 256 bytes:
// ~64 tokens at the project's 4 bytes per token (PromptSize), 4 of vLLM's 16-token blocks. A
// conversation that grows turn by turn re-sends the same messages JSON up to its new turn, so its
// old chunks match again; only whole chunks count (a tail shorter than 256 bytes is not modelled).
internal static class PromptChunks
{
    public const int Bytes = 256;

    // 256 chunks = 64 KiB of prompt, ~16k tokens: the tail beyond it is not modelled (a prefix
    // that long is already a hit worth routing on). The buffer each request owns is this long.
    public const int Max = 256;

    public const int TokensPerChunk = Bytes / PromptSize.BytesPerToken;

    // Up to 1,024 idle arrays per size, as Memory/BufferPool, for the same reason.
    private static readonly ArrayPool<ulong> Pool = ArrayPool<ulong>.Create(Max, 1024);

    // Room for the hashes of a prompt inside a body of `bodyBytes` (the prompt is part of it): none
    // for a body under 256 bytes, at most Max. A fixed 2 KiB array per request was a tenth of a
    // stream's memory (perf/RESULTS.md, issue 22: memory per stream). Give it back with Return.
    public static ulong[] Rent(int bodyBytes)
    {
        var count = Math.Min(Max, bodyBytes / Bytes);
        return count == 0 ? [] : Pool.Rent(count);
    }

    public static void Return(ulong[] chunks)
    {
        if (chunks.Length > 0)
        {
            Pool.Return(chunks);
        }
    }

    // Writes the chained hashes of `prompt`'s whole chunks into `into` (up to its length and Max);
    // returns how many. XxHash3 seeded with the previous hash: vectorized, ~1 us for 8 KiB. salt
    // (TenantCacheSalt.Seed; 0: none) seeds the first chunk, as vLLM mixes cache_salt into its first
    // block: salted tenants' chunks match only their own, so routing's affinity stays in the tenant.
    public static int Hash(ReadOnlySpan<byte> prompt, Span<ulong> into, ulong salt = 0)
    {
        var count = Math.Min(Math.Min(prompt.Length / Bytes, into.Length), Max);
        var previous = salt;
        for (var i = 0; i < count; i++)
        {
            var hash = XxHash3.HashToUInt64(prompt.Slice(i * Bytes, Bytes), unchecked((long)previous));
            previous = hash == 0 ? 1 : hash; // 0 marks an empty slot in the cache model
            into[i] = previous;
        }

        return count;
    }
}
