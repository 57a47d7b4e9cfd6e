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
    // A hang guard for what the watch loops do on their own: a passing run ends at the event.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private PostgresServer _server = null!;
    private PostgresAddress _address = null!;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        Assert.True(PostgresAddress.TryParse(_server.Url, out _address, out var error), error);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    internal override ITenantStore Open() => PostgresTenantStore.Open(_address);

    // A database whose tenants table predates issue 20 (no cache_salt, stream_budget_cutoff) or
    // issue 21 (no response_cache): the first call adds the columns it lacks, and its tenants read
    // with the defaults of an entry without the keys.
    [Theory]
    [InlineData("")]
    [InlineData(", cache_salt boolean, stream_budget_cutoff boolean NOT NULL DEFAULT false")]
    public async Task AnOlderTenantsTable_GetsTheColumnsItLacks_AndKeepsItsTenants(string issue20Columns)
    {
        await using (var old = new Npgsql.NpgsqlConnection(_server.ConnectionString))
        {
            await old.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand(
                $"""
                CREATE TABLE tenants (name text PRIMARY KEY, class text NOT NULL, weight integer NOT NULL, models text NOT NULL,
                    rpm bigint NOT NULL, tpm bigint NOT NULL, max_in_flight integer NOT NULL, budget_tokens bigint NOT NULL,
                    monthly_budget_tokens bigint NOT NULL, budget_usd double precision NOT NULL, monthly_budget_usd double precision NOT NULL,
                    environment text NOT NULL, created bigint NOT NULL, updated bigint NOT NULL{issue20Columns});
                INSERT INTO tenants (name, class, weight, models, rpm, tpm, max_in_flight, budget_tokens, monthly_budget_tokens,
                    budget_usd, monthly_budget_usd, environment, created, updated)
                VALUES ('legacy', 'default', 3, '["*"]', 0, 0, 0, 100, 0, 0, 0, 'prod', 1, 2);
                """, old);
            await command.ExecuteNonQueryAsync();
        }

        using var store = Open();
        var legacy = Assert.Single(store.Load().Tenants);
        Assert.Equal(("legacy", 3, 100L, (bool?)null, false, false), (legacy.Name, legacy.Weight, legacy.BudgetTokens, legacy.CacheSalt, legacy.StreamBudgetCutoff, legacy.ResponseCache));
        Assert.True(store.UpdateTenant(legacy with { CacheSalt = false, StreamBudgetCutoff = true, ResponseCache = true }, Audit("tenant.update", "legacy", 3)));
        var migrated = store.Load().Tenants[0];
        Assert.Equal(((bool?)false, true, true), (migrated.CacheSalt, migrated.StreamBudgetCutoff, migrated.ResponseCache));
    }

    [Fact]
    public async Task TwoGateways_OnOneDatabase_SeeEachOthersTenantsAndKeys_AfterAReloadOfTheStore()
    {
        var file = TestConfig.Valid("");
        await using var a = new TenantDirectory(Open(), file, TimeProvider.System, NullLogger.Instance);
        await using var b = new TenantDirectory(Open(), file, TimeProvider.System, NullLogger.Instance);

        Assert.True(a.CreateTenant(StoredTenant.Defaults("team-x", 0) with { Rpm = 7 }, "ops").IsDone);
        Assert.True(a.IssueKey("team-x", "laptop", null, KeyWindow.Always, "ops", out var issued).IsDone);
        Assert.Empty(b.Contents.Tenants); // B has not read the store since
        Assert.True(b.Reload());
        Assert.Equal(7, Assert.Single(b.Contents.Tenants).Rpm);
        Assert.Equal(issued!.Key.Id, Assert.Single(b.Contents.Keys).Id);
        Assert.False(b.Reload()); // nothing changed since

        Assert.True(b.RevokeKey("team-x", issued.Key.Id, "ops").IsDone);
        Assert.False(a.Contents.Keys.Single().IsRevoked); // until A reads the store
        Assert.False(b.Reload()); // its own change: read already
        Assert.True(a.Reload());
        Assert.True(a.Contents.Keys.Single().IsRevoked);
        Assert.Equal(["key.revoke", "key.issue", "tenant.create"], a.ReadAudit(DateTimeOffset.UnixEpoch, 10).Select(e => e.Action));
    }

    // Two replicas' changes commit in the other order than their audit ids were drawn: the store
    // read between the two commits must not hide the later commit (its smaller id) behind the
    // version it already read, or that replica would miss the change until the next one.
    [Fact]
    public async Task AChangeCommittedAfterALaterNumberedOne_StillMakesANewerVersion()
    {
        using var store = Open();
        store.InsertTenant(StoredTenant.Defaults("first", 0), Audit("tenant.create", "first", 0));
        await using var slow = new Npgsql.NpgsqlConnection(_server.ConnectionString);
        await slow.OpenAsync();
        await using var transaction = await slow.BeginTransactionAsync();
        await using (var insert = new Npgsql.NpgsqlCommand("INSERT INTO audit (at, actor, action, target, detail) VALUES (1, 'ops', 'tenant.update', 'first', '')", slow, transaction))
        {
            await insert.ExecuteNonQueryAsync(); // draws its id now, commits last
        }

        store.InsertTenant(StoredTenant.Defaults("second", 0), Audit("tenant.create", "second", 2));
        var read = store.Load().Version;
        await transaction.CommitAsync();

        Assert.True(store.Version() > read, $"version {store.Version()} after the slow commit, {read} before it");
    }

    // SPEC: a key revoked on one replica is refused on every replica within 1 s. The mechanism, on a
    // real Postgres and without a wall clock: each change is announced in its own commit and the
    // other directory reads the store on the announcement, with no re-read period in between (the
    // stores here have none: AnnouncedOnlyStore), so the time it takes is one NOTIFY and one read;
    // the re-read the directories ask for is only the safety net for a lost announcement.
    [Fact]
    public async Task AChangeOnOneGateway_IsAnnounced_AndPublishedOnTheOther_WithoutAReloadCall()
    {
        var file = TestConfig.Valid("");
        var storeA = new AnnouncedOnlyStore(PostgresTenantStore.Open(_address));
        var storeB = new AnnouncedOnlyStore(PostgresTenantStore.Open(_address));
        await using var a = new TenantDirectory(storeA, file, TimeProvider.System, NullLogger.Instance);
        await using var b = new TenantDirectory(storeB, file, TimeProvider.System, NullLogger.Instance);
        var onA = new Published();
        var onB = new Published();
        a.AppliesTo(onA.Set);
        b.AppliesTo(onB.Set);
        await Task.WhenAll(storeA.Listening, storeB.Listening).WaitAsync(Bound);

        Assert.True(a.CreateTenant(StoredTenant.Defaults("team-x", 0), "ops").IsDone);
        Assert.True(a.IssueKey("team-x", "laptop", null, KeyWindow.Always, "ops", out var issued).IsDone);
        await onB.UntilAsync(s => s.ApiKeys.Find(issued!.Secret)?.Name == "team-x", Bound);

        Assert.True(b.RevokeKey("team-x", issued!.Key.Id, "ops").IsDone);
        await onA.UntilAsync(s => s.ApiKeys.Find(issued.Secret) is null, Bound);

        // Published by the announcements, not by a wait that failed and reconnected; the directories
        // ask for RereadInterval only as the safety net.
        Assert.Equal((0, 0), (storeA.Failures, storeB.Failures));
        Assert.Equal((TenantDirectory.RereadInterval, TenantDirectory.RereadInterval), (storeA.Asked, storeB.Asked));
    }

    [Fact]
    public async Task Load_FromAServerThatIsDown_IsATenantStoreExceptionNamingTheDatabase_WithoutThePassword()
    {
        await _server.StopAsync();
        Assert.True(PostgresAddress.TryParse($"postgres://postgres:s3cret@127.0.0.1:{_server.Port}/postgres", out var address, out var error), error);
        using var store = PostgresTenantStore.Open(address); // connects at its first call

        var thrown = Assert.Throws<TenantStoreException>(store.Load);

        Assert.Contains($"127.0.0.1:{_server.Port}/postgres", thrown.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", thrown.Message, StringComparison.Ordinal);
    }

    // Postgres down at startup: the directory starts on the file, not ready, and publishes the
    // store once it answers; a conflict at that first read keeps it not ready, naming both.
    [Fact]
    public async Task ADirectoryStartedWhileThePostgresIsDown_IsNotReady_UntilItsFirstReadAgreesWithTheFile()
    {
        using (var seed = Open())
        {
            Assert.True(seed.InsertTenant(StoredTenant.Defaults("team-x", 0), Audit("tenant.create", "team-x", 0)));
            Assert.True(seed.InsertTenant(StoredTenant.Defaults("acme", 0), Audit("tenant.create", "acme", 0)));
        }

        await _server.StopAsync();
        var file = TestConfig.Valid("[[tenants]]\nname = \"acme\"\n"); // acme: in both, a conflict
        await using var directory = new TenantDirectory(Open(), file, TimeProvider.System, NullLogger.Instance);
        Assert.Contains("has not been read yet", directory.NotReady, StringComparison.Ordinal);
        Assert.Equal("acme", Assert.Single(directory.Initial().Tenants).Name); // the file's alone
        Assert.Equal(TenancyOutcome.Unavailable, directory.CreateTenant(StoredTenant.Defaults("team-y", 0), "ops").Outcome);
        var published = new Published();
        directory.AppliesTo(published.Set);

        await _server.RestartAsync();
        await Until(() => directory.NotReady?.Contains("conflict", StringComparison.Ordinal) == true);
        Assert.Contains("tenant \"acme\" is also a store tenant", directory.NotReady, StringComparison.Ordinal);
        Assert.Contains(_server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), directory.NotReady, StringComparison.Ordinal);

        directory.ApplyFile(TestConfig.Valid("")); // the file gives acme up: the next read agrees
        await Until(() => directory.NotReady is null); // ready once the store's snapshot is published
        await published.UntilAsync(s => s.Tenants.Select(t => t.Name).SequenceEqual(["acme", "team-x"]), TimeSpan.Zero);
        Assert.True(directory.CreateTenant(StoredTenant.Defaults("team-y", 0), "ops").IsDone);
    }

    // Polls a condition the watch loop makes true: at most 10 s.
    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(20);
        }
    }
}
