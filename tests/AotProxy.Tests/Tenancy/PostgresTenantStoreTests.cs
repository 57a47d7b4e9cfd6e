using AotProxy.Configuration;
using AotProxy.Identity;
using AotProxy.Store;
using AotProxy.Tenancy;
using AotProxy.Tests.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Tenancy;

// The tenant store on a real PostgreSQL (tests/Shared/PostgresServer.cs): TenantStoreContract's
// behaviours, plus what only a shared store has: two gateways on one database.
public sealed class PostgresTenantStoreTests : TenantStoreContract, IAsyncLifetime
{
    private PostgresServer _server = null!;
    private PostgresAddress _address = null!;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        Assert.True(PostgresAddress.TryParse(_server.Url, out _address, out var error), error);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    internal override ITenantStore Open() => PostgresTenantStore.Open(_address);

    [Fact]
    public async Task TwoGateways_OnOneDatabase_SeeEachOthersTenantsAndKeys_AfterAReloadOfTheStore()
    {
        var file = TestConfig.Valid("");
        await using var a = new TenantDirectory(Open(), file, TimeProvider.System, NullLogger.Instance);
        await using var b = new TenantDirectory(Open(), file, TimeProvider.System, NullLogger.Instance);
        GatewaySnapshot? onA = null;
        GatewaySnapshot? onB = null;
        a.AppliesTo(next => onA = next);
        b.AppliesTo(next => onB = next);

        Assert.True(a.CreateTenant(StoredTenant.Defaults("team-x", 0) with { Rpm = 7 }, "ops").IsDone);
        Assert.True(a.IssueKey("team-x", "laptop", null, KeyWindow.Always, "ops", out var issued).IsDone);
        Assert.Null(onB); // B has not read the store since
        b.Reload();
        Assert.Equal(7, Assert.Single(onB!.Tenants).Rpm);
        Assert.Equal("team-x", onB.ApiKeys.Find(issued!.Secret)?.Name);

        Assert.True(b.RevokeKey("team-x", issued.Key.Id, "ops").IsDone);
        Assert.Equal("team-x", onA!.ApiKeys.Find(issued.Secret)?.Name); // until A reads the store
        a.Reload();
        Assert.Null(onA.ApiKeys.Find(issued.Secret));
        Assert.Equal(["key.revoke", "key.issue", "tenant.create"], a.ReadAudit(DateTimeOffset.UnixEpoch, 10).Select(e => e.Action));
    }

    [Fact]
    public async Task Open_AServerThatIsDown_IsATenantStoreExceptionNamingTheDatabase_WithoutThePassword()
    {
        await _server.StopAsync();
        Assert.True(PostgresAddress.TryParse($"postgres://postgres:s3cret@127.0.0.1:{_server.Port}/postgres", out var address, out var error), error);

        var thrown = Assert.Throws<TenantStoreException>(() => PostgresTenantStore.Open(address));

        Assert.Contains($"127.0.0.1:{_server.Port}/postgres", thrown.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", thrown.Message, StringComparison.Ordinal);
    }
}
