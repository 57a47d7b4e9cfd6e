using System.ClientModel;
using System.Net;
using System.Text.Json;
using AotProxy.Caching;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Ledger;
using OpenAI;
using OpenAI.Chat;

namespace AotProxy.FunctionalTests;

// Issue 21's exact response cache through the real binary and the official openai NuGet client:
// the second identical deterministic request is answered by the gateway (the simulator sees one),
// as the first was (its stream event for event), free of the tenant's budget, marked in the
// ledger, /api/usage and the metrics; a sampled request is never cached, and another tenant's
// identical request misses.
public class ResponseCacheBinaryTests
{
    private const string CachedKey = "sk-test-cached";
    private const string OtherKey = "sk-test-other";

    private static readonly string Tenants = $"""

        [ledger]
        batch_interval = "50ms"

        [[tenants]]
        name = "cached"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(CachedKey)}"]
        response_cache = true
        budget_tokens = 100000

        [[tenants]]
        name = "other"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(OtherKey)}"]
        response_cache = true
        """;

    [Fact]
    public async Task SecondIdenticalDeterministicRequest_IsAnsweredFromTheCache_FreeAndMarked()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, extraToml: Tenants);
        var stats = gateway.Workers[0].Stats;
        var client = Client(gateway, CachedKey);
        var deterministic = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        List<ChatMessage> prompt = [new UserChatMessage("What is the capital of France?")];

        var first = await client.CompleteChatAsync(prompt, deterministic);
        Assert.Equal("miss", Header(first, ResponseCacheStage.Header));
        Assert.Equal(1, stats.RequestsTotal);

        var second = await client.CompleteChatAsync(prompt, deterministic);
        Assert.Equal("hit", Header(second, ResponseCacheStage.Header));
        Assert.Equal(1, stats.RequestsTotal); // the simulator saw the first only
        Assert.Equal(first.Value.Content[0].Text, second.Value.Content[0].Text);
        Assert.Equal(first.Value.Id, second.Value.Id);
        Assert.Equal((first.Value.Usage.InputTokenCount, first.Value.Usage.OutputTokenCount), (second.Value.Usage.InputTokenCount, second.Value.Usage.OutputTokenCount));

        // Sampled (temperature absent is vLLM's 1): never cached, no header, every one to the worker.
        for (var i = 0; i < 2; i++)
        {
            var sampled = await client.CompleteChatAsync(prompt, new ChatCompletionOptions { MaxOutputTokenCount = 12 });
            Assert.Null(Header(sampled, ResponseCacheStage.Header));
        }

        Assert.Equal(3, stats.RequestsTotal);

        // Another tenant's identical request: its own entry, a miss.
        var other = await Client(gateway, OtherKey).CompleteChatAsync(prompt, deterministic);
        Assert.Equal("miss", Header(other, ResponseCacheStage.Header));
        Assert.Equal(4, stats.RequestsTotal);

        // A stream: the hit replays the events the miss relayed, byte for byte (usage chunk stripped as before).
        var streamBody = $$"""{"model":"{{TestGateway.Model}}","stream":true,"temperature":0,"max_tokens":12,"messages":[{"role":"user","content":"Count to five."}]}""";
        var (missHeader, missEvents) = await StreamAsync(gateway, streamBody);
        var (hitHeader, hitEvents) = await StreamAsync(gateway, streamBody.Replace("\"stream\":true,\"temperature\":0", "\"temperature\":0, \"stream\":true", StringComparison.Ordinal));
        Assert.Equal(("miss", "hit"), (missHeader, hitHeader));
        Assert.Equal(5, stats.RequestsTotal);
        Assert.True(missEvents.Length > 3, string.Join("|", missEvents));
        Assert.Equal(missEvents, hitEvents);
        Assert.Equal("data: [DONE]", hitEvents[^1]);

        // The ledger marks the two hits, with no tokens; the budget spent is the misses' only.
        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        await TestGateway.WaitUntilAsync(() => Task.FromResult(LedgerFile.ReadRows(ledger).Count == 7), "every request has its ledger row");
        var rows = CacheRows(ledger);
        var hits = rows.Where(r => r.Hit).ToList();
        Assert.Equal(2, hits.Count);
        Assert.All(hits, h => Assert.Equal(("cached", 0L, LedgerOutcome.CacheHit, 200), (h.Tenant, h.Tokens, h.Outcome, h.Status)));
        var spent = rows.Where(r => r.Tenant == "cached").Sum(r => r.Tokens);
        Assert.True(spent > 0);
        using (var tenants = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/tenants")))
        {
            var cached = tenants.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "cached");
            Assert.Equal((spent, 100_000 - spent), (cached.GetProperty("spent_tokens").GetInt64(), cached.GetProperty("budget_left_tokens").GetInt64()));
        }

        using (var usage = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/usage?by=tenant&since=2000-01-01")))
        {
            var row = usage.RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "cached");
            Assert.Equal((6L, 2L), (row.GetProperty("requests").GetInt64(), row.GetProperty("cache_hits").GetInt64()));
        }

        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        var model = $"model=\"{TestGateway.Model}\"";
        Assert.Equal((2.0, 3.0), (MetricsText.Value(metrics, "llm_gateway_response_cache_hits_total", model), MetricsText.Value(metrics, "llm_gateway_response_cache_misses_total", model)));
        Assert.True(MetricsText.Value(metrics, "llm_gateway_response_cache_bytes") > 0);
    }

    [Fact]
    public async Task WithChargeHits_AHitCostsTheOriginalsUsage_AndAReloadThatDisablesTheCacheEmptiesIt()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, extraToml: Tenants + """

            [response_cache]
            charge_hits = true
            """);
        var stats = gateway.Workers[0].Stats;
        var client = Client(gateway, CachedKey);
        var seeded = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 };
        List<ChatMessage> prompt = [new UserChatMessage("Name three rivers.")];
        var first = await client.CompleteChatAsync(prompt, seeded);
        var second = await client.CompleteChatAsync(prompt, seeded);
        Assert.Equal(("miss", "hit", 1L), (Header(first, ResponseCacheStage.Header), Header(second, ResponseCacheStage.Header), stats.RequestsTotal));
        var original = first.Value.Usage.InputTokenCount + first.Value.Usage.OutputTokenCount;

        // Charged as the original: the budget spent twice its tokens, the hit's row holds them.
        await TestGateway.WaitUntilAsync(async () => await SpentAsync(gateway) == 2 * original, $"the hit is charged {original} tokens");
        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        await TestGateway.WaitUntilAsync(() => Task.FromResult(CacheRows(ledger).Count == 2), "both rows are written");
        Assert.Equal([(original, false), (original, true)], CacheRows(ledger).Select(r => ((long)r.Tokens, r.Hit)).OrderBy(r => r.Item2));

        // A reload with enabled = false: the cache empties, and the same request goes to the worker, no header.
        await File.WriteAllTextAsync(gateway.ConfigPath, gateway.Toml.Replace("charge_hits = true", "charge_hits = true\nenabled = false", StringComparison.Ordinal));
        await TestGateway.WaitUntilAsync(async () => MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_response_cache_bytes") == 0, "the reload empties the cache");
        var third = await client.CompleteChatAsync(prompt, seeded);
        Assert.Equal((null, 2L), (Header(third, ResponseCacheStage.Header), stats.RequestsTotal));
    }

    // response_cache on tenants created at run time (POST /api/tenants, the SQLite tenant store):
    // the one created with it gets a hit on the second identical deterministic request, marked in
    // the header and the ledger; the one created without it sends both to the worker.
    [Fact]
    public async Task ARuntimeTenantCreatedWithResponseCache_GetsAHit_AndOneCreatedWithoutItDoesNot()
    {
        await using var gateway = await BinaryGateway.StartAsync(1, extraToml: "\n[ledger]\nbatch_interval = \"50ms\"\n");
        var stats = gateway.Workers[0].Stats;
        var body = $$"""{"model":"{{TestGateway.Model}}","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":"Name a prime."}]}""";
        var headers = new Dictionary<string, (string?, string?)>();
        foreach (var (tenant, optIn) in new[] { ("runtime-cached", ",\"response_cache\":true"), ("runtime-plain", "") })
        {
            var created = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", $$"""{"name":"{{tenant}}"{{optIn}}}""");
            Assert.True(created.Status == HttpStatusCode.Created, created.Text);
            var (_, key) = await AdminApi.IssueAsync(gateway.Admin, tenant);
            headers[tenant] = (await CacheHeaderAsync(gateway, body, key), await CacheHeaderAsync(gateway, body, key));
        }

        Assert.Equal(("miss", "hit"), headers["runtime-cached"]);
        Assert.Equal((null, null), headers["runtime-plain"]);
        Assert.Equal(3, stats.RequestsTotal); // the hit never reached the worker
        using (var tenants = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/tenants")))
        {
            var flags = tenants.RootElement.EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => t.GetProperty("response_cache").GetBoolean());
            Assert.Equal((true, false), (flags["runtime-cached"], flags["runtime-plain"]));
        }

        var ledger = Path.Combine(Path.GetDirectoryName(gateway.ConfigPath)!, "aotproxy-usage.db");
        await TestGateway.WaitUntilAsync(() => Task.FromResult(CacheRows(ledger).Count == 4), "every request has its ledger row");
        Assert.Equal([("runtime-cached", true)], CacheRows(ledger).Where(r => r.Hit).Select(r => (r.Tenant, r.Hit)));
    }

    private static async Task<string?> CacheHeaderAsync(BinaryGateway gateway, string body, string key)
    {
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", body, key));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return CacheHeader(response);
    }

    private static string? CacheHeader(HttpResponseMessage response) =>
        response.Headers.TryGetValues(ResponseCacheStage.Header, out var values) ? values.Single() : null;

    private static async Task<long> SpentAsync(BinaryGateway gateway)
    {
        using var tenants = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/tenants"));
        return tenants.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == "cached").GetProperty("spent_tokens").GetInt64();
    }

    private static ChatClient Client(BinaryGateway gateway, string key) => new(
        TestGateway.Model,
        new ApiKeyCredential(key),
        new OpenAIClientOptions { Endpoint = new Uri(gateway.Process.DataUri!, "v1"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    private static string? Header(ClientResult result, string name) =>
        result.GetRawResponse().Headers.TryGetValue(name, out var value) ? value : null;

    private static async Task<(string? Cache, string[] Events)> StreamAsync(BinaryGateway gateway, string body)
    {
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", body, CachedKey));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return (CacheHeader(response), text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries));
    }

    private static List<(string Tenant, long Tokens, string Outcome, int Status, bool Hit)> CacheRows(string path)
    {
        using var connection = LedgerDatabase.Open(path, create: false);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT tenant, prompt_tokens + completion_tokens, outcome, status, cache_hit FROM requests";
        using var reader = command.ExecuteReader();
        var rows = new List<(string, long, string, int, bool)>();
        while (reader.Read())
        {
            rows.Add((reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt32(3), reader.GetInt64(4) == 1));
        }

        return rows;
    }
}
