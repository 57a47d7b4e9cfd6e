using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Configuration;

namespace AotProxy.Identity;

// API key -> tenant. The presented key is hashed (SHA-256, what the config stores) and the
// digest is compared in constant time. The dictionary lookup on the digest's first 8 bytes only
// narrows the candidates: timing can at most tell an attacker something about a SHA-256 prefix
// of their own guess, never about a stored key.
internal sealed class ApiKeyIndex
{
    private readonly FrozenDictionary<ulong, Entry[]> _byPrefix;

    public ApiKeyIndex(IEnumerable<TenantModel> tenants)
    {
        var groups = new Dictionary<ulong, List<Entry>>();
        foreach (var tenant in tenants)
        {
            foreach (var hash in tenant.ApiKeySha256)
            {
                var digest = hash.AsSpan().ToArray();
                var prefix = BitConverter.ToUInt64(digest, 0);
                if (!groups.TryGetValue(prefix, out var list))
                {
                    groups[prefix] = list = [];
                }

                list.Add(new Entry(digest, tenant, KeyIdOf(digest)));
            }
        }

        _byPrefix = groups.ToFrozenDictionary(g => g.Key, g => g.Value.ToArray());
    }

    public TenantModel? Find(ReadOnlySpan<char> apiKey) => Find(apiKey, out _);

    // keyId: the key's KeyIdOf, "" when no key matches.
    public TenantModel? Find(ReadOnlySpan<char> apiKey, out string keyId)
    {
        keyId = string.Empty;
        if (apiKey.IsEmpty || apiKey.Length > 1024)
        {
            return null;
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        Digest(apiKey, digest);

        if (!_byPrefix.TryGetValue(BitConverter.ToUInt64(digest), out var candidates))
        {
            return null;
        }

        TenantModel? match = null;
        foreach (var candidate in candidates)
        {
            if (CryptographicOperations.FixedTimeEquals(candidate.Digest, digest))
            {
                match = candidate.Tenant;
                keyId = candidate.KeyId;
            }
        }

        return match;
    }

    // "Bearer KEY" -> KEY; anything else -> empty.
    public static ReadOnlySpan<char> BearerToken(ReadOnlySpan<char> authorization)
    {
        const string Scheme = "Bearer ";
        return authorization.Length > Scheme.Length && authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)
            ? authorization[Scheme.Length..].Trim()
            : default;
    }

    // SHA-256 of the key's UTF-8 bytes: what api_key_sha256 and admin_token_sha256 hold.
    // Keys are at most 1024 chars (checked by callers), so the bytes fit on the stack.
    public static void Digest(ReadOnlySpan<char> key, Span<byte> digest)
    {
        Span<byte> utf8 = stackalloc byte[key.Length * 3];
        var length = Encoding.UTF8.GetBytes(key, utf8);
        SHA256.HashData(utf8[..length], digest);
    }

    public static string HashKey(string apiKey) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(apiKey)));

    // Which of a tenant's keys was used, for the ledger: the first 8 hex digits of its SHA-256
    // (what api_key_sha256 starts with), never the key. Built once per snapshot, so identifying
    // a caller allocates nothing.
    public static string KeyIdOf(ReadOnlySpan<byte> digest) => Convert.ToHexStringLower(digest[..4]);

    private readonly record struct Entry(byte[] Digest, TenantModel Tenant, string KeyId);
}
