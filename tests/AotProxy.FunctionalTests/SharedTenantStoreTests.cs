using System.Diagnostics;
using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using Xunit.Abstractions;

namespace AotProxy.FunctionalTests;

// [store] postgres_url holds the runtime tenants and keys of every replica (the real binary, the
// AOT one in CI, and a real postgres on loopback): a key issued on one replica is served by the
// other within 1 s, and a key revoked on one is refused by the other within 1 s (issue 17).
public sealed class SharedTenantStoreTests(ITestOutputHelper output) : IAsyncLifetime
{
    // The issue's bound for a change to reach every replica.
    private static readonly TimeSpan Propagation = TimeSpan.FromSeconds(1);

    private ClusterFleet _fleet = null!;
    private PostgresServer _postgres = null!;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 16 }, ledger: true);
    }

    public async Task DisposeAsync()
    {
        await _fleet.DisposeAsync();
        await _postgres.DisposeAsync();
    }

    [Fact]
    public async Task AKeyIssuedOnA_IsServedOnB_WithinOneSecond_AndRevokedOnB_IsRefusedOnA_WithinOneSecond()
    {
        var store = $"""

            [store]
            postgres_url = "{_postgres.Url}"

            """;
        var a = await _fleet.StartReplicaAsync("replica-a", store);
        var b = await _fleet.StartReplicaAsync("replica-b", store);
        using var adminA = new HttpClient { BaseAddress = a.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var adminB = new HttpClient { BaseAddress = b.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var dataA = new HttpClient { BaseAddress = a.DataUri, Timeout = TimeSpan.FromSeconds(10) };
        using var dataB = new HttpClient { BaseAddress = b.DataUri, Timeout = TimeSpan.FromSeconds(10) };

        var created = await AdminApi.SendAsync(adminA, HttpMethod.Post, "/api/tenants", """{"name":"team-a","models":["*"]}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (id, key) = await AdminApi.IssueAsync(adminA, "team-a", """{"label":"fleet"}""");
        var issued = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(dataA, key)); // the replica that made it: at once
        TimeSpan servedOnB;
        try
        {
            servedOnB = await UntilAsync(dataB, key, HttpStatusCode.OK);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // B's log says why (e.g. its store did not answer: event 1706).
            throw new InvalidOperationException($"the key was not served on B; B's output:\n{b.Output}", ex);
        }

        Assert.True(issued.Elapsed <= Propagation, $"served on B {issued.Elapsed.TotalMilliseconds:F0} ms after the issue on A ({servedOnB.TotalMilliseconds:F0} ms of tries)");

        output.WriteLine($"issued on A, served on B after {issued.Elapsed.TotalMilliseconds:F0} ms");
        var revoked = await AdminApi.SendAsync(adminB, HttpMethod.Delete, $"/api/tenants/team-a/keys/{id}");
        Assert.True(revoked.Status == HttpStatusCode.OK, revoked.Text);
        var revokedAt = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(dataB, key));
        await UntilAsync(dataA, key, HttpStatusCode.Unauthorized);
        Assert.True(revokedAt.Elapsed <= Propagation, $"refused on A {revokedAt.Elapsed.TotalMilliseconds:F0} ms after the revoke on B");

        output.WriteLine($"revoked on B, refused on A after {revokedAt.Elapsed.TotalMilliseconds:F0} ms");

        // Both replicas read the one audit.
        var audit = await AdminApi.SendAsync(adminA, HttpMethod.Get, "/api/audit");
        Assert.Equal(["key.revoke", "key.issue", "tenant.create"], audit.Body.EnumerateArray().Select(e => e.GetProperty("action").GetString()));
        await a.WaitForLineAsync("read the PostgreSQL database", TimeSpan.FromSeconds(5));
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient data, string key)
    {
        using var response = await data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false), key));
        return response.StatusCode;
    }

    // Requests with `key` until one answers `status`: at most 10 s and 2,000 tries (each a
    // loopback round trip of a few ms), so a change that never arrives fails the test.
    private static async Task<TimeSpan> UntilAsync(HttpClient data, string key, HttpStatusCode status)
    {
        var started = Stopwatch.StartNew();
        for (var tries = 0; tries < 2_000 && started.Elapsed < TimeSpan.FromSeconds(10); tries++)
        {
            if (await StatusAsync(data, key) == status)
            {
                return started.Elapsed;
            }
        }

        Assert.Fail($"no {status} within {started.Elapsed}");
        return started.Elapsed;
    }
}
