using System.Collections.Immutable;

namespace AotProxy.Identity;

// A key issued through the admin API (the tenant store), as the identify stage needs it: its id,
// SHA-256 and tenant, the instant it stops (Unix ms: its expiry or a rotation's valid_until,
// whichever is first; long.MaxValue: never), its time-of-day window and its last use.
// A revoked key is not one: it leaves the index.
internal sealed record IssuedKey(string Id, ImmutableArray<byte> Sha256, string Tenant, long NotAfterMs, KeyWindow Window, KeyUse Use);
