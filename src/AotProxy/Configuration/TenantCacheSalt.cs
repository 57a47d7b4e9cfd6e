using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace AotProxy.Configuration;

// A tenant's prefix-cache salt ([[tenants]]/[[classes]] cache_salt): hex of SHA-256 over
// "aotproxy-cache-salt:" + the tenant's name. The gateway sends it as vLLM's `cache_salt`, which
// vLLM mixes into the first KV block's hash, so no other tenant's prompt can hit (or time) this
// tenant's cached blocks; Seed salts routing's prompt hashes the same way. Derived from the name
// alone, so every replica of a fleet computes the same salt without sharing state.
internal sealed class TenantCacheSalt
{
    private readonly byte[] _json;

    public TenantCacheSalt(string tenant)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes("aotproxy-cache-salt:" + tenant));
        Hex = Convert.ToHexStringLower(digest);
        _json = Encoding.ASCII.GetBytes("\"" + Hex + "\"");
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(digest);
        Seed = seed == 0 ? 1 : seed; // 0 means "no salt" to PromptChunks and RequestInspector
    }

    public string Hex { get; }

    // The value as a JSON string, quotes included: what goes into the request body.
    public ReadOnlySpan<byte> Json => _json;

    public ulong Seed { get; }
}
