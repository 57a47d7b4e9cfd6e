using System.Diagnostics;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Simulator;
using Xunit.Abstractions;
using static AotProxy.FunctionalTests.Support.ClusterFleet;

namespace AotProxy.FunctionalTests;

// Issue 16, measurement 2 in small, against the real binary (the AOT one in CI) and a real
// redis-server: tenant heavy (weight 3) reaches only replica A, light (weight 1) only replica B,
// both always backlogged on one worker whose max_concurrency (4) is shared. Alone, each replica
// takes about half of the worker's slots: 1:1 in service. With the fair-share counters shared,
// the weighted service follows the weights, measured from the worker's own usage.
public sealed class ClusterFairShareTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string HeavyKey = "sk-test-cluster-heavy";
    private const string LightKey = "sk-test-cluster-light";
    private const int MaxConcurrency = 4;
    private const int LightRequests = 120; // ~4,000 weighted tokens: the slack (256) is ~6 % of it
    private static readonly TimeSpan MaxRun = TimeSpan.FromSeconds(60);

    private ClusterFleet _fleet = null!;

    // 16 tokens at 200/s: ~80 ms a request, so slots come free often and the grants decide.
    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(
            new SimulatorOptions { Name = "sim-fair", Model = TestGateway.Model, DecodeTokensPerSecond = 200 }, MaxConcurrency);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task TenantsOnDifferentReplicas_WeightedThreeToOne_GetThreeToOneOfTheService()
    {
        var a = await StartReplicaAsync("replica-a");
        var b = await StartReplicaAsync("replica-b");
        foreach (var replica in _fleet.Replicas)
        {
            await WaitForMembersAsync(replica, ["replica-a", "replica-b"]); // each has its connection to the store, and its name
        }

        using var heavyHttp = new HttpClient { BaseAddress = a.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var lightHttp = new HttpClient { BaseAddress = b.DataUri, Timeout = TimeSpan.FromSeconds(60) };

        // Closed-loop clients, 8 per tenant on 4 shared slots: each tenant always has requests
        // waiting on its replica. The measurement starts once both have had 4 requests served
        // (both backlogged, their lifts done) and stops when light has LightRequests more.
        var measured = new Dictionary<string, double> { ["heavy"] = 0, ["light"] = 0 };
        var counts = new Dictionary<string, int> { ["heavy"] = 0, ["light"] = 0 };
        var warm = new Dictionary<string, int> { ["heavy"] = 0, ["light"] = 0 };
        var stopped = false;
        var clock = Stopwatch.StartNew();
        bool Done()
        {
            lock (measured)
            {
                return stopped |= clock.Elapsed > MaxRun;
            }
        }

        async Task Client(string tenant, HttpClient http, string key, int client)
        {
            for (var i = 0; !Done(); i++)
            {
                using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 16, content: $"{tenant} {client} {i} count the tokens"), key));
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
                using var json = JsonDocument.Parse(body);
                var usage = json.RootElement.GetProperty("usage");
                var cost = usage.GetProperty("prompt_tokens").GetInt64() + (2.0 * usage.GetProperty("completion_tokens").GetInt64());
                lock (measured)
                {
                    if (warm["heavy"] >= 4 && warm["light"] >= 4 && !stopped)
                    {
                        measured[tenant] += cost;
                        counts[tenant]++;
                        stopped = counts["light"] >= LightRequests;
                    }

                    warm[tenant]++;
                }
            }
        }

        var clients = Enumerable.Range(0, 8).Select(c => Client("heavy", heavyHttp, HeavyKey, c))
            .Concat(Enumerable.Range(0, 8).Select(c => Client("light", lightHttp, LightKey, c)))
            .ToList();
        await Task.WhenAll(clients).WaitAsync(MaxRun + TimeSpan.FromSeconds(30));

        var ratio = measured["heavy"] / measured["light"];
        var line = $"weighted service heavy:light = {ratio:0.000} ({measured["heavy"]:0} : {measured["light"]:0}; {counts["heavy"]} and {counts["light"]} requests in {clock.Elapsed.TotalSeconds:0.0} s)";
        output.WriteLine(line);
        Assert.True(counts["light"] >= LightRequests, line);

        // 3:1 within what the bound allows over 120 requests of light's (~34 weighted tokens
        // each): the grant rule's slack (256 weighted tokens of service) and a flush interval's
        // charges either way, here well under 15 %. (Over 40 requests the slack alone was 18 %.)
        Assert.True(ratio is >= 3 * 0.85 and <= 3 * 1.15, line);
        Assert.InRange(_fleet.Worker.Stats.MaxInEngine, 1, MaxConcurrency);

        // Light's replica (alone it would take half the slots) held its requests back for
        // heavy's, and says so.
        var deferred = MetricsText.Value(await MetricsAsync(b), "llm_gateway_cluster_fair_share_deferred_total", $"model=\"{TestGateway.Model}\"");
        output.WriteLine($"replica-b deferred {deferred} grants and turns");
        Assert.True(deferred > 0, $"replica-b deferred {deferred} grants and turns");
    }

    private Task<GatewayProcess> StartReplicaAsync(string name) =>
        _fleet.StartReplicaAsync(name, $"""

            [scheduler]
            policy = "fairshare"
            input_weight = 1.0
            output_weight = 2.0

            [[tenants]]
            name = "heavy"
            weight = 3
            api_key_sha256 = ["{ApiKeyIndex.HashKey(HeavyKey)}"]

            [[tenants]]
            name = "light"
            weight = 1
            api_key_sha256 = ["{ApiKeyIndex.HashKey(LightKey)}"]

            """);
}
