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

    // issued: the tenant store's keys (Tenancy/), each of a tenant in `tenants`.
    public ApiKeyIndex(IEnumerable<TenantModel> tenants, IEnumerable<IssuedKey>? issued = null)
    {
        var groups = new Dictionary<ulong, List<Entry>>();
        var byName = new Dictionary<string, TenantModel>(StringComparer.Ordinal);
        foreach (var tenant in tenants)
        {
            byName.TryAdd(tenant.Name, tenant);
            foreach (var hash in tenant.ApiKeySha256)
            {
                var digest = hash.AsSpan().ToArray();
                Add(groups, new Entry(digest, tenant, KeyIdOf(digest), long.MaxValue, KeyWindow.Always, null));
            }
        }

        foreach (var key in issued ?? [])
        {
            if (byName.TryGetValue(key.Tenant, out var tenant))
            {
                Add(groups, new Entry(key.Sha256.AsSpan().ToArray(), tenant, key.Id, key.NotAfterMs, key.Window, key.Use));
            }
        }

        _byPrefix = groups.ToFrozenDictionary(g => g.Key, g => g.Value.ToArray());
    }

    public TenantModel? Find(ReadOnlySpan<char> apiKey) => Find(apiKey, out _);

    public TenantModel? Find(ReadOnlySpan<char> apiKey, out string keyId) => Find(apiKey, TimeProvider.System, out keyId, out _);

    // keyId: the key's KeyIdOf (an issued key's id), "" when no key matches. An issued key past its
    // expiry or valid_until, or outside its window, is no match (failure says which); the clock is
    // read only for an issued key, so a file key costs what it always did.
    public TenantModel? Find(ReadOnlySpan<char> apiKey, TimeProvider time, out string keyId, out IdentifyFailure failure)
    {
        if (!IsPresentable(apiKey))
        {
            keyId = string.Empty;
            failure = IdentifyFailure.InvalidApiKey;
            return null;
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        Digest(apiKey, digest);
        return FindDigest(digest, time, out keyId, out failure);
    }

    // Find, given the Digest of a presentable key (KeyDigestCache's).
    public TenantModel? FindDigest(ReadOnlySpan<byte> digest, TimeProvider time, out string keyId, out IdentifyFailure failure)
    {
        keyId = string.Empty;
        failure = IdentifyFailure.InvalidApiKey;
        if (!_byPrefix.TryGetValue(BitConverter.ToUInt64(digest), out var candidates))
        {
            return null;
        }

        Entry? match = null;
        foreach (var candidate in candidates)
        {
            if (CryptographicOperations.FixedTimeEquals(candidate.Digest, digest))
            {
                match = candidate;
            }
        }

        if (match is not { } found)
        {
            return null;
        }

        if (found.Use is { } use)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (now >= found.NotAfterMs)
            {
                failure = IdentifyFailure.ExpiredApiKey;
                return null;
            }

            if (!found.Window.Contains(now))
            {
                failure = IdentifyFailure.OutsideKeyWindow;
                return null;
            }

            use.Touch(now / 1000);
        }

        keyId = found.KeyId;
        failure = IdentifyFailure.None;
        return found.Tenant;
    }

    // A key worth hashing: 1 to 1024 chars (Digest hashes it on the stack).
    public static bool IsPresentable(ReadOnlySpan<char> apiKey) => apiKey.Length is > 0 and <= 1024;

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

    private static void Add(Dictionary<ulong, List<Entry>> groups, Entry entry)
    {
        var prefix = BitConverter.ToUInt64(entry.Digest, 0);
        if (!groups.TryGetValue(prefix, out var list))
        {
            groups[prefix] = list = [];
        }

        list.Add(entry);
    }

    // NotAfterMs, Window and Use: an issued key's (Use null: a file key, which never expires).
    private readonly record struct Entry(byte[] Digest, TenantModel Tenant, string KeyId, long NotAfterMs, KeyWindow Window, KeyUse? Use);
}
