using System.Collections.Immutable;
using AotProxy.Configuration;
using AotProxy.Identity;

namespace AotProxy.Tests.Configuration;

// GatewaySnapshotFactory's copies of a snapshot (another listener; the tenant store's tenants and
// keys added) keep every part of it they do not rebuild. Each copy lists the properties one by
// one, so a part added later is easy to miss: the merge of [store] and the tenant store missed
// Store in WithStore (every snapshot after an admin write said the shared ledger was off).
public sealed class GatewaySnapshotCopyTests
{
    private static readonly GatewaySnapshot File = TestConfig.Valid("""
        [server]
        admin_token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

        [ledger]
        path = "/tmp/ledger.db"

        [store]
        postgres_url = "postgres://gw@127.0.0.1:5432/aotproxy"

        [cluster]
        redis_url = "redis://127.0.0.1:6379"

        [telemetry]
        max_tenant_series = 7
        """);

    [Fact]
    public void WithServer_KeepsEveryPartButTheServer() =>
        AssertKept(GatewaySnapshotFactory.WithServer(File, File.Server), nameof(GatewaySnapshot.Server));

    [Fact]
    public void WithStore_KeepsEveryPartButTheTenantsAndTheirIndexes() =>
        AssertKept(
            GatewaySnapshotFactory.WithStore(File, ImmutableArray<TenantModel>.Empty, Array.Empty<IssuedKey>()),
            nameof(GatewaySnapshot.Tenants), nameof(GatewaySnapshot.ApiKeys), nameof(GatewaySnapshot.StoreTenants), nameof(GatewaySnapshot.Callers));

    private static void AssertKept(GatewaySnapshot copy, params string[] rebuilt)
    {
        Assert.True(File.Store.Enabled, "the file names a store");
        foreach (var property in typeof(GatewaySnapshot).GetProperties().Where(p => p.CanRead && p.GetIndexParameters().Length == 0 && !rebuilt.Contains(p.Name)))
        {
            Assert.True(Equals(property.GetValue(File), property.GetValue(copy)), $"{property.Name} was not kept");
        }
    }
}
