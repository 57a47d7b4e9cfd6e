using AotProxy.Configuration;
using AotProxy.Identity;
using AotProxy.Tenancy;
using AotProxy.Tests.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Tenancy;

public sealed class TenantDirectoryTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("aotproxy-directory-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task AFileTenantThatCrossedACreateOfItsName_WinsTheMerge_AndNoSnapshotHoldsOneNameTwice()
    {
        var store = SqliteTenantStore.Open(Path.Combine(_directory, "usage.db"));
        await using var directory = new TenantDirectory(store, TestConfig.Valid(""), TimeProvider.System, NullLogger.Instance);
        GatewaySnapshot? published = null;
        directory.AppliesTo(next => published = next);
        Assert.True(directory.CreateTenant(StoredTenant.Defaults("team-x", 0) with { Rpm = 7 }, "ops").IsDone);
        Assert.Equal(7, Assert.Single(published!.Tenants).Rpm);

        // A reload whose check ran before the create: the file now names team-x too.
        directory.ApplyFile(TestConfig.Valid("[[tenants]]\nname = \"team-x\"\nrpm = 3\n"));

        var tenant = Assert.Single(published!.Tenants);
        Assert.Equal(3, tenant.Rpm);
        Assert.DoesNotContain("team-x", (IReadOnlySet<string>)published.StoreTenants);
    }

    [Fact]
    public void Conflicts_NameTheFileTenant_TheStoreTenant_AndAClassAStoreTenantNeeds()
    {
        var store = SqliteTenantStore.Open(Path.Combine(_directory, "usage.db"));
        var classes = "[[classes]]\nname = \"gold\"\n\n[[classes]]\nname = \"free\"\n";
        using var directory = new DirectoryScope(new TenantDirectory(store, TestConfig.Valid(classes), TimeProvider.System, NullLogger.Instance));
        Assert.True(directory.Value.CreateTenant(StoredTenant.Defaults("team-x", 0) with { Class = "gold" }, "ops").IsDone);

        var conflicts = directory.Value.Conflicts(TestConfig.Valid("[[classes]]\nname = \"free\"\n\n[[tenants]]\nname = \"team-x\"\nclass = \"free\"\n"));

        Assert.Equal(["tenants[0].name", "classes"], conflicts.Select(c => c.Key));
        Assert.Contains("\"team-x\" is also a store tenant", conflicts[0].Message, StringComparison.Ordinal);
        Assert.Contains("class \"gold\" is used by store tenant \"team-x\"", conflicts[1].Message, StringComparison.Ordinal);
        Assert.Empty(directory.Value.Conflicts(TestConfig.Valid(classes)));
    }

    // A key committed whose read back failed is issued (its secret shown, not lost), not
    // "nothing was changed"; the next read of the store publishes it (a shared store's watch loop
    // reads on the change's own announcement).
    [Fact]
    public async Task AChangeCommitted_WhoseReadBackFails_IsAnsweredAsMade_AndPublishedByTheNextRead()
    {
        var store = new ReadFailingStore(SqliteTenantStore.Open(Path.Combine(_directory, "usage.db")));
        await using var directory = new TenantDirectory(store, TestConfig.Valid(""), TimeProvider.System, NullLogger.Instance);
        GatewaySnapshot? published = null;
        directory.AppliesTo(next => published = next);
        Assert.True(directory.CreateTenant(StoredTenant.Defaults("team-x", 0), "ops").IsDone);

        store.FailReads = true;
        var result = directory.IssueKey("team-x", "laptop", null, KeyWindow.Always, "ops", out var issued);

        Assert.True(result.IsDone, result.Message);
        Assert.NotNull(issued);
        Assert.Null(published!.ApiKeys.Find(issued.Secret)); // not served until read
        store.FailReads = false;
        Assert.True(directory.Reload());
        Assert.Equal("team-x", published!.ApiKeys.Find(issued.Secret)?.Name);
    }

    // The hang of SharedTenantStoreTests (issue 17): a change's announcement ended the watch loop's
    // wait on the epoll thread, and the loop read the store there, waiting for _lock, which the
    // admin write held while its own read waited for that same epoll thread (until Npgsql's 30 s
    // command timeout). Bounded: the read gives up after EventLoopStore.ReadBound.
    [Fact]
    public async Task AnAdminWrite_WhoseChangeIsAnnouncedToThisReplica_IsNotBlockedByTheWatchLoop()
    {
        var store = new EventLoopStore(SqliteTenantStore.Open(Path.Combine(_directory, "usage.db")));
        await using var directory = new TenantDirectory(store, TestConfig.Valid(""), TimeProvider.System, NullLogger.Instance);
        GatewaySnapshot? published = null;
        directory.AppliesTo(next => Volatile.Write(ref published, next));
        await store.Waiting.WaitAsync(TimeSpan.FromSeconds(10));

        var created = await Task.Run(() => directory.CreateTenant(StoredTenant.Defaults("team-x", 0), "ops")).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(created.IsDone, created.Message);
        Assert.Equal("team-x", Assert.Single(Volatile.Read(ref published)!.Tenants).Name);
    }

    // A change whose announcement was lost reaches a replica when its wait for one runs out: the
    // watch loop waits RereadInterval, then reads the store and publishes what changed elsewhere.
    // Driven by the store's own wait (RereadOnlyStore), not by a clock: until the test ends a wait,
    // the loop reads nothing, and a revoked key is still served (what SharedTenantStoreTests'
    // AChangeThatWasNotAnnounced_ReachesB_ByTheReread sees through the binary, in up to 10 s).
    [Fact]
    public async Task AChangeNotAnnounced_IsPublished_WhenTheWaitOfRereadIntervalRunsOut()
    {
        var bound = TimeSpan.FromSeconds(30); // a hang guard: each wait below ends at its event
        var path = Path.Combine(_directory, "usage.db");
        var store = new RereadOnlyStore(SqliteTenantStore.Open(path));
        await using var replica = new TenantDirectory(store, TestConfig.Valid(""), TimeProvider.System, NullLogger.Instance);
        var published = new Published();
        replica.AppliesTo(published.Set);
        Assert.Equal(TenantDirectory.RereadInterval, await store.WaitingAsync().WaitAsync(bound));

        await using var elsewhere = new TenantDirectory(SqliteTenantStore.Open(path), TestConfig.Valid(""), TimeProvider.System, NullLogger.Instance);
        Assert.True(elsewhere.CreateTenant(StoredTenant.Defaults("team-x", 0), "ops").IsDone);
        Assert.True(elsewhere.IssueKey("team-x", "laptop", null, KeyWindow.Always, "ops", out var issued).IsDone);
        Assert.Empty(replica.Contents.Tenants); // its loop still waits: nothing read
        store.Elapse();
        await published.UntilAsync(s => s.ApiKeys.Find(issued!.Secret)?.Name == "team-x", bound);
        Assert.Equal(TenantDirectory.RereadInterval, await store.WaitingAsync().WaitAsync(bound)); // waiting again

        Assert.True(elsewhere.RevokeKey("team-x", issued!.Key.Id, "ops").IsDone);
        await published.UntilAsync(s => s.ApiKeys.Find(issued.Secret) is not null, TimeSpan.Zero); // served until the re-read
        store.Elapse();
        await published.UntilAsync(s => s.ApiKeys.Find(issued.Secret) is null, bound);
    }

    private sealed class DirectoryScope(TenantDirectory value) : IDisposable
    {
        public TenantDirectory Value { get; } = value;

        public void Dispose() => Value.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
