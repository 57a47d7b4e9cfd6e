using System.Collections.Immutable;

namespace AotProxy.Tenancy;

// What the tenant store holds at one read: its tenants and every key (revoked ones included), and
// the store's Version in the same read (so a newer version always means newer contents).
internal sealed record StoreContents(ImmutableArray<StoredTenant> Tenants, ImmutableArray<StoredKey> Keys, long Version)
{
    public static StoreContents Empty { get; } = new([], [], 0);
}
