using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace AotProxy.Identity;

// The SHA-256 of an Authorization header's API key, computed once per header string instance.
// Kestrel gives a keep-alive connection's next request the same string instance when the header's
// bytes repeat (KestrelServerOptions.DisableStringReuse, off by default: KeyDigestCacheTests checks
// it on a real connection), so a client that sends its key again skips the hash: through OpenSSL
// it costs a lone request 25 µs on a cold core (1 µs warm; perf/RESULTS.md, cpu22). Keyed by
// reference: a string is immutable, so the digest stays its key's while the instance lives, and
// the entry goes with it (a ConditionalWeakTable holds no key alive). Only the digest is kept:
// the constant-time compare, expiry, windows and revocation (a new snapshot's index) still run
// on every request.
internal sealed class KeyDigestCache
{
    private readonly ConditionalWeakTable<string, byte[]> _digests = new();

    // authorization: a header whose Bearer token ApiKeyIndex.IsPresentable.
    public byte[] Of(string authorization)
    {
        if (!_digests.TryGetValue(authorization, out var digest))
        {
            digest = new byte[SHA256.HashSizeInBytes];
            ApiKeyIndex.Digest(ApiKeyIndex.BearerToken(authorization), digest);
            _digests.TryAdd(authorization, digest);
        }

        return digest;
    }
}
