using System.Collections.Immutable;
using System.Data.Common;
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

    // One row of either store's key query, its columns in this order: id, tenant, sha256, label,
    // created, expires_at, window_start, window_end, valid_until, revoked_at, last_used.
    public static StoredKey Read(DbDataReader row) => new(
        row.GetString(0), row.GetString(1), [.. (byte[])row.GetValue(2)], row.GetString(3), row.GetInt64(4),
        Nullable(row, 5), new KeyWindow((short)row.GetInt32(6), (short)row.GetInt32(7)),
        Nullable(row, 8), Nullable(row, 9), Nullable(row, 10));

    private static long? Nullable(DbDataReader row, int ordinal) => row.IsDBNull(ordinal) ? null : row.GetInt64(ordinal);
}
