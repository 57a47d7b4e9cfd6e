using System.Diagnostics;
using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using AotProxy.Tenancy;
using Npgsql;
using Xunit.Abstractions;

namespace AotProxy.FunctionalTests;

// [store] postgres_url holds the runtime tenants and keys of every replica (the real binary, the
// AOT one in CI, and a real postgres on loopback): a tenant or key made on one replica is announced
// and served by the other, a key revoked on one is announced and refused by the other (issue 17:
// within 1 s, see Deadline), and a change whose announcement is lost (a cut LISTEN connection)
// still arrives, by the re-read.
public sealed class SharedTenantStoreTests(ITestOutputHelper output) : IAsyncLifetime
{
    // A hang guard, not the guarantee. SPEC's "revoked on every replica within 1 s" is the
    // announcement path: each change NOTIFYs in its own commit, and a replica reads the store on the
    // announcement, with no period in between (PostgresTenantStoreTests.AChangeOnOneGateway_IsAnnounced_
    // AndPublishedOnTheOther_WithoutAReloadCall proves that on stores with no re-read at all, and that
    // TenantDirectory.RereadInterval is only the safety net). A wall-clock bound of 1 s here could
    // fail on a loaded 2-core host with nothing wrong; what is checked here instead is that
    // the binary announces each change (this test listens on the channel too) and that the other
    // replica then serves it. The time it took goes to the output.
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private ClusterFleet _fleet = null!;
    private PostgresServer _postgres = null!;
    private string _store = null!;
    private GatewayProcess _a = null!;
    private GatewayProcess _b = null!;
    private HttpClient _adminA = null!;
    private HttpClient _adminB = null!;
    private HttpClient _dataA = null!;
    private HttpClient _dataB = null!;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 16 }, ledger: true);
        _store = $"""

            [store]
            postgres_url = "{_postgres.Url}"

            """;
        _a = await _fleet.StartReplicaAsync("replica-a", _store);
        _b = await _fleet.StartReplicaAsync("replica-b", _store);
        _adminA = new HttpClient { BaseAddress = _a.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        _adminB = new HttpClient { BaseAddress = _b.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        _dataA = new HttpClient { BaseAddress = _a.DataUri, Timeout = TimeSpan.FromSeconds(10) };
        _dataB = new HttpClient { BaseAddress = _b.DataUri, Timeout = TimeSpan.FromSeconds(10) };

        // One request through each replica first (the file's key): a JIT gateway's first request
        // compiles the data path, which would count as propagation below.
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(_dataA, TestGateway.Key));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(_dataB, TestGateway.Key));
    }

    public async Task DisposeAsync()
    {
        foreach (var client in new[] { _adminA, _adminB, _dataA, _dataB })
        {
            client?.Dispose();
        }

        await _fleet.DisposeAsync();
        await _postgres.DisposeAsync();
    }

    [Fact]
    public async Task ATenantAndAKeyMadeOnA_AreAnnounced_AndServedOnB_AndAKeyRevokedOnB_IsAnnounced_AndRefusedOnA()
    {
        await using var announcements = await ListenAsync();
        var created = await AdminApi.SendAsync(_adminA, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"]}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        await AnnouncedAsync(announcements, "the tenant made on A");
        var tenantOnB = await UntilAsync("tenant team-a listed on B", async () =>
            (await AdminApi.SendAsync(_adminB, HttpMethod.Get, "/api/tenants")).Body.EnumerateArray().Any(t => t.GetProperty("name").GetString() == "team-a"));
        output.WriteLine($"created on A, listed on B after {tenantOnB.TotalMilliseconds:F0} ms");

        var (id, key) = await AdminApi.IssueAsync(_adminA, "team-a", """{"label":"fleet"}""");
        await AnnouncedAsync(announcements, "the key issued on A");
        var servedOnB = await UntilAsync("the key served on B", async () => await StatusAsync(_dataB, key) == HttpStatusCode.OK);
        output.WriteLine($"issued on A, served on B after {servedOnB.TotalMilliseconds:F0} ms");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(_dataA, key)); // the replica that made it

        var revoked = await AdminApi.SendAsync(_adminB, HttpMethod.Delete, $"/api/tenants/team-a/keys/{id}");
        Assert.True(revoked.Status == HttpStatusCode.OK, revoked.Text);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(_dataB, key)); // from the next request
        await AnnouncedAsync(announcements, "the key revoked on B");
        var refusedOnA = await UntilAsync("the key refused on A", async () => await StatusAsync(_dataA, key) == HttpStatusCode.Unauthorized);
        output.WriteLine($"revoked on B, refused on A after {refusedOnA.TotalMilliseconds:F0} ms");

        // Both replicas read the one audit.
        var audit = await AdminApi.SendAsync(_adminA, HttpMethod.Get, "/api/audit");
        Assert.Equal(["key.revoke", "key.issue", "tenant.create"], audit.Body.EnumerateArray().Select(e => e.GetProperty("action").GetString()));
    }

    [Fact]
    public async Task AChangeMadeAfterPostgresRestarted_ReachesB_ThoughItsListeningConnectionWasCut()
    {
        var created = await AdminApi.SendAsync(_adminA, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"]}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (id, key) = await AdminApi.IssueAsync(_adminA, "team-a");
        await UntilAsync("the key served on B", async () => await StatusAsync(_dataB, key) == HttpStatusCode.OK);

        await _postgres.StopAsync(); // cuts every connection, B's LISTEN among them
        await _b.WaitForLineAsync("while waiting for changes made elsewhere", TimeSpan.FromSeconds(10)); // event 1706
        await _postgres.RestartAsync();

        // A's pooled connections died with the server: a write may answer 503 until A connects
        // again, and a 503 whose read-back failed after its commit is followed by a 404.
        var revokedOnA = await UntilAsync("the revoke on A", async () =>
            (await AdminApi.SendAsync(_adminA, HttpMethod.Delete, $"/api/tenants/team-a/keys/{id}")).Status is HttpStatusCode.OK or HttpStatusCode.NotFound);
        var refusedOnB = await UntilAsync("the key refused on B", async () => await StatusAsync(_dataB, key) == HttpStatusCode.Unauthorized);
        output.WriteLine($"revoked on A after the restart, refused on B after {refusedOnB.TotalMilliseconds:F0} ms ({revokedOnA.TotalMilliseconds:F0} ms of tries on A)");
    }

    [Fact]
    public async Task AChangeThatWasNotAnnounced_ReachesB_ByTheReread()
    {
        var created = await AdminApi.SendAsync(_adminA, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"]}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (id, key) = await AdminApi.IssueAsync(_adminA, "team-a");
        await UntilAsync("the key served on B", async () => await StatusAsync(_dataB, key) == HttpStatusCode.OK);

        // The revoke as a replica writes it (the change and its audit row in one transaction),
        // without its NOTIFY: an announcement lost, as with a connection cut at that moment.
        await using (var connection = new NpgsqlConnection(_postgres.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                $"""
                BEGIN;
                UPDATE api_keys SET revoked_at = 1 WHERE id = '{id}';
                INSERT INTO audit (at, actor, action, target, detail) VALUES (1, 'test', 'key.revoke', 'team-a/{id}', '');
                COMMIT;
                """, connection);
            await command.ExecuteNonQueryAsync();
        }

        var refusedOnB = await UntilAsync("the key refused on B", async () => await StatusAsync(_dataB, key) == HttpStatusCode.Unauthorized);
        output.WriteLine($"revoked without an announcement, refused on B after {refusedOnB.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task AReplicaStartedWhilePostgresIsDown_IsNotReady_AndServesTheStoresKeysOnceItAnswers()
    {
        var created = await AdminApi.SendAsync(_adminA, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"]}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (_, key) = await AdminApi.IssueAsync(_adminA, "team-a");

        await _postgres.StopAsync();
        var c = await _fleet.StartReplicaAsync("replica-c", _store); // before: it exited 1
        await c.WaitForLineAsync("cannot be read at startup", TimeSpan.FromSeconds(10)); // event 1707
        using var adminC = new HttpClient { BaseAddress = c.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var dataC = new HttpClient { BaseAddress = c.DataUri, Timeout = TimeSpan.FromSeconds(10) };
        using (var ready = await adminC.GetAsync("/ready"))
        {
            var text = await ready.Content.ReadAsStringAsync();
            Assert.True(ready.StatusCode == HttpStatusCode.ServiceUnavailable, text);
            Assert.Contains("tenant store", text, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(dataC, key));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(dataC, TestGateway.Key)); // the file's tenants are served

        await _postgres.RestartAsync();
        var readyAfter = await UntilAsync("/ready 200 on C", async () =>
        {
            using var ready = await adminC.GetAsync("/ready");
            return ready.StatusCode == HttpStatusCode.OK;
        });
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(dataC, key));
        output.WriteLine($"Postgres back, C ready after {readyAfter.TotalMilliseconds:F0} ms");
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient data, string key)
    {
        using var response = await data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key));
        return response.StatusCode;
    }

    // A connection of this test's own, listening on the channel the replicas announce changes on.
    private async Task<NpgsqlConnection> ListenAsync()
    {
        var connection = new NpgsqlConnection(_postgres.ConnectionString);
        await connection.OpenAsync();
        await using var listen = new NpgsqlCommand($"LISTEN {PostgresTenantStore.Channel}", connection);
        await listen.ExecuteNonQueryAsync();
        return connection;
    }

    // The next announcement: a change is announced in its own commit, which the admin call that
    // made it has answered after.
    private static async Task AnnouncedAsync(NpgsqlConnection listener, string what) =>
        Assert.True(await listener.WaitAsync(Deadline), $"{what}: no NOTIFY on {PostgresTenantStore.Channel} within {Deadline}");

    // Tries until the condition holds, 5 ms apart, and returns the time it took (for the output);
    // fails when it did not within the Deadline (a hang guard, not a bound of the product's).
    private static async Task<TimeSpan> UntilAsync(string what, Func<Task<bool>> condition)
    {
        var started = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(started.Elapsed < Deadline, $"{what}: not within {Deadline}");
            await Task.Delay(5);
        }

        return started.Elapsed;
    }
}
