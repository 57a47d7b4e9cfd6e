using System.Collections.Immutable;

namespace AotProxy.Tenancy;

// What the tenant store holds at one read: its tenants and every key (revoked ones included).
internal sealed record StoreContents(ImmutableArray<StoredTenant> Tenants, ImmutableArray<StoredKey> Keys)
{
    public static StoreContents Empty { get; } = new([], []);
}
