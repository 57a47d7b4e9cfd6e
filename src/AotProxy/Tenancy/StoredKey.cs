using System.Collections.Immutable;
using AotProxy.Identity;

namespace AotProxy.Tenancy;

// A key issued through the admin API, as the store holds it: never the key, only its SHA-256.
// Id: the first 8 hex digits of that SHA-256 (ApiKeyIndex.KeyIdOf), what the ledger's key_id
// column holds for it. Times in Unix milliseconds (UTC), null when unset; LastUsedSecond in Unix
// seconds (flushed from KeyUse).
internal sealed record StoredKey(
    string Id,
    string Tenant,
    ImmutableArray<byte> Sha256,
    string Label,
    long CreatedMs,
    long? ExpiresAtMs,
    KeyWindow Window,
    long? ValidUntilMs,
    long? RevokedAtMs,
    long? LastUsedSecond)
{
    // When it stops: the earlier of its expiry and a rotation's valid_until.
    public long NotAfterMs => Math.Min(ExpiresAtMs ?? long.MaxValue, ValidUntilMs ?? long.MaxValue);

    public bool IsRevoked => RevokedAtMs is not null;
}
