using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using StackExchange.Redis;

namespace AotProxy.FunctionalTests;

// [cluster] with [store], against the real binary (the AOT one in CI), a real redis-server and a
// real postgres on loopback: a replica that is gone with its file (a replaced pod's emptyDir) still
// counts in the fleet's budgets, because a new epoch seeds them from the shared ledger too
// (docs/CLUSTER.md, "Budgets from the shared ledger").
public sealed class ClusterLedgerSeedTests : IAsyncLifetime
{
    private const string Key = "sk-test-cluster-ledger-seed";

    private ClusterFleet _fleet = null!;
    private PostgresServer _postgres = null!;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 8 }, ledger: true);
    }

    public async Task DisposeAsync()
    {
        await _fleet.DisposeAsync();
        await _postgres.DisposeAsync();
    }

    // Replica A uses up a tenant's token budget, stops (its last rows shipped) and its file is
    // deleted; Redis comes back empty; replica B, on a new file, starts the fleet's new epoch.
    // Before: B's epoch held its own spend only (none), so B served the used-up tenant again.
    [Fact]
    public async Task AReplicaGoneWithItsFile_StillCountsInTheBudget_OfAFleetOnAnEmptyRedis()
    {
        var extra = $$"""

            [[tenants]]
            name = "spent"
            api_key_sha256 = ["{{AotProxy.Identity.ApiKeyIndex.HashKey(Key)}}"]
            budget_tokens = 40

            [store]
            postgres_url = "{{_postgres.Url}}"

            """;
        var a = await _fleet.StartReplicaAsync("replica-a", extra);
        long used = 0;
        var served = 0;
        using (var client = new HttpClient { BaseAddress = a.DataUri, Timeout = TimeSpan.FromSeconds(30) })
        {
            for (var i = 0; i < 20; i++)
            {
                using var response = await client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key: Key));
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                    break;
                }

                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                used += body.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt64();
                served++;
            }
        }

        Assert.True(served > 0 && used >= 40, $"served {served}, {used} tokens: the budget was not used up");
        a.SendSigterm();
        Assert.Equal(0, await a.WaitForExitAsync(TimeSpan.FromSeconds(30))); // its stop shipped the last rows
        foreach (var file in _fleet.Directory.GetFiles("replica-a.db*"))
        {
            file.Delete();
        }

        await _fleet.Redis.StopAsync();
        await _fleet.Redis.RestartAsync();

        var b = await _fleet.StartReplicaAsync("replica-b", extra);
        await b.WaitForLineAsync("seeded the budgets' spend of 1 ledger files from the shared ledger", TimeSpan.FromSeconds(30));

        using (var client = new HttpClient { BaseAddress = b.DataUri, Timeout = TimeSpan.FromSeconds(30) })
        using (var response = await client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key: Key)))
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.TooManyRequests, body);
            Assert.Contains("insufficient_quota", body, StringComparison.Ordinal);
        }

        Assert.Equal(served, _fleet.Worker.Stats.RequestsTotal);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(_fleet.Redis.Url.Replace("redis://", string.Empty, StringComparison.Ordinal));
        Assert.Equal(used, (long)await redis.GetDatabase().HashGetAsync("aotproxy:tenant:spent", "budget_spent"));
    }
}
