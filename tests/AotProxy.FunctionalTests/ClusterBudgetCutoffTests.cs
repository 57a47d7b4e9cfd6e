using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace AotProxy.FunctionalTests;

// Issue 20's mid-stream budget cutoff, fleet-wide, through the real executable (the AOT binary in
// CI): two replicas on one real redis-server, one tenant with a token budget and
// stream_budget_cutoff, three streams on each replica that together want far more than the
// budget. Each stream draws its completion tokens in blocks leased from the fleet's budget, so
// the fleet spends exactly the budget: the prompts reserved plus the tokens relayed over both
// replicas = the budget (0 overspend), every stream ends with the budget_exhausted event, nothing
// stays reserved in the store, and the shared spend = the sum of the replicas' ledgers. Before
// (each replica cut at what it knew), each replica could relay up to the whole budget.
public sealed class ClusterBudgetCutoffTests : IAsyncLifetime
{
    private const string Tenant = "capped";
    private const string Key = "sk-test-cluster-cutoff";
    private const long Budget = 900;
    private const int StreamsPerReplica = 3;

    private readonly ITestOutputHelper _output;
    private ClusterFleet _fleet = null!;

    public ClusterBudgetCutoffTests(ITestOutputHelper output) => _output = output;

    // 50 tokens a second a stream: six streams spend the budget in ~3 s, all of them at once.
    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-cutoff", Model = TestGateway.Model, DecodeTokensPerSecond = 50 }, maxConcurrency: 16, ledger: true);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task TwoReplicas_ConcurrentStreams_SpendExactlyTheFleetsBudget_EachCutWithTheEvent()
    {
        var tenant = $$"""

            [[tenants]]
            name = "{{Tenant}}"
            api_key_sha256 = ["{{AotProxy.Identity.ApiKeyIndex.HashKey(Key)}}"]
            budget_tokens = {{Budget}}
            stream_budget_cutoff = true

            """;
        string[] names = ["replica-a", "replica-b"];
        var replicas = await _fleet.StartMembersAsync(names, tenant);

        var clients = replicas.Select(r => new HttpClient { BaseAddress = r.DataUri, Timeout = TimeSpan.FromSeconds(60) }).ToList();
        string[] bodies;
        try
        {
            bodies = await Task.WhenAll(Enumerable.Range(0, 2 * StreamsPerReplica).Select(async i =>
            {
                using var response = await clients[i % 2].SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 2000), Key));
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, body);
                return body;
            }));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }

        // Every stream was cut at the fleet's budget, with the event the openai clients raise.
        Assert.All(bodies, b => Assert.EndsWith("\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"budget_exhausted\"}}\n\ndata: [DONE]\n\n", b, StringComparison.Ordinal));
        var relayed = bodies.Sum(ContentEvents);

        // Accounted on each replica: prompt estimates + relayed chunks, over both, = the budget.
        var totals = new List<(long Requests, long Prompt, long Completion)>();
        foreach (var replica in replicas)
        {
            await TestGateway.WaitUntilAsync(async () => (await TenantAsync(replica)).Requests == StreamsPerReplica, $"{replica.DataUri}'s streams are accounted");
            totals.Add(await TenantAsync(replica));
        }

        var spent = totals.Sum(t => t.Prompt + t.Completion);
        _output.WriteLine($"budget {Budget}: relayed {relayed} completion tokens, prompts {totals.Sum(t => t.Prompt)}, spent {spent} over 2 replicas ({string.Join(", ", totals.Select(t => t.Prompt + t.Completion))})");
        Assert.Equal(relayed, totals.Sum(t => t.Completion));
        Assert.Equal(Budget, spent);

        // The store: the budget spent, nothing left reserved, no replica's part left to reap.
        await using var redis = await ConnectionMultiplexer.ConnectAsync(_fleet.Redis.Url.Replace("redis://", string.Empty, StringComparison.Ordinal));
        var db = redis.GetDatabase();
        await TestGateway.WaitUntilAsync(async () => (long)await db.HashGetAsync($"aotproxy:tenant:{Tenant}", "budget_reserved") == 0, "the streams' reservations are released");
        Assert.Equal(Budget, (long)await db.HashGetAsync($"aotproxy:tenant:{Tenant}", "budget_spent"));
        foreach (var name in names)
        {
            Assert.Equal(0, (long)await db.HashGetAsync($"aotproxy:res:{name}", $"t|{Tenant}|budget_reserved"));
        }

        // The ledgers (one per replica) add up to the shared spend.
        var ledgered = 0L;
        foreach (var replica in replicas)
        {
            JsonElement? row = null;
            await TestGateway.WaitUntilAsync(async () => (row = await LedgerRowAsync(replica)) is { } r && r.GetProperty("requests").GetInt64() == StreamsPerReplica, $"{replica.DataUri}'s ledger has its streams");
            ledgered += row!.Value.GetProperty("prompt_tokens").GetInt64() + row.Value.GetProperty("completion_tokens").GetInt64();
        }

        Assert.Equal(Budget, ledgered);
    }

    // The SSE events that carry generated text (the role chunk and the error event do not).
    private static int ContentEvents(string body) => body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
        .Where(e => e.StartsWith("data: {", StringComparison.Ordinal))
        .Count(e =>
        {
            using var json = JsonDocument.Parse(e["data: ".Length..]);
            return json.RootElement.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                && choices[0].GetProperty("delta").TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 };
        });

    private static async Task<(long Requests, long Prompt, long Completion)> TenantAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/tenants"));
        var tenant = json.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == Tenant);
        return (tenant.GetProperty("requests").GetInt64(), tenant.GetProperty("prompt_tokens").GetInt64(), tenant.GetProperty("completion_tokens").GetInt64());
    }

    // The tenant's row of the replica's ledger totals; null until its first row is written.
    private static async Task<JsonElement?> LedgerRowAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var json = JsonDocument.Parse(await admin.GetStringAsync("/api/usage?by=tenant&since=2000-01-01"));
        return json.RootElement.GetProperty("rows").EnumerateArray().Where(r => r.GetProperty("key").GetString() == Tenant).Select(r => (JsonElement?)r.Clone()).FirstOrDefault();
    }
}
