using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// Issue 20's mid-stream budget enforcement through the real binary, on a tenant created at run
// time (POST /api/tenants with stream_budget_cutoff and cache_salt): a long stream is ended at the
// tenant's budget with the budget_exhausted event and [DONE], the usage charged (the tenant's
// counters and the ledger) is exactly what was relayed, the budget is spent to its cap and no
// more, and the official openai npm client raises the event as an APIError.
public class BudgetCutoffBinaryTests
{
    private const string Tenant = "capped";

    [Fact]
    public async Task ALongStream_IsCutAtItsTenantsBudget_ChargedWhatWasRelayed_AndTheOpenAiClientRaisesIt()
    {
        await using var gateway = await BinaryGateway.StartAsync(1);
        var created = await AdminApi.SendAsync(gateway.Admin, HttpMethod.Post, "/api/tenants", $$"""{"name":"{{Tenant}}","budget_tokens":60,"stream_budget_cutoff":true,"cache_salt":true}""");
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var (_, key) = await AdminApi.IssueAsync(gateway.Admin, Tenant);
        var tenant = await TenantAsync(gateway);
        Assert.True(tenant.GetProperty("stream_budget_cutoff").GetBoolean() && tenant.GetProperty("cache_salt").GetBoolean(), tenant.ToString());

        // max_tokens 400, a 60-token budget: cut where the prompt estimate + relayed tokens reach 60.
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 400), key));
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var relayed = ContentEvents(body);
        Assert.InRange(relayed, 1, 59);
        Assert.EndsWith("\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"budget_exhausted\"}}\n\ndata: [DONE]\n\n", body, StringComparison.Ordinal);
        Assert.Contains($"it was ended after {relayed} completion tokens.", body, StringComparison.Ordinal);

        tenant = await Fleet.TenantAfterAsync(gateway.Admin, Tenant, requests: 1, handled: 1);
        Assert.Equal(relayed, tenant.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(60 - relayed, tenant.GetProperty("prompt_tokens").GetInt64()); // the estimate the budget reserved
        Assert.Equal((60L, 0L), (tenant.GetProperty("spent_tokens").GetInt64(), tenant.GetProperty("budget_left_tokens").GetInt64()));
        await TestGateway.WaitUntilAsync(async () => await LedgerRowAsync(gateway) is { } row
            && row.GetProperty("completion_tokens").GetInt64() == relayed && row.GetProperty("prompt_tokens").GetInt64() == 60 - relayed, "the ledger has the relayed tokens");
        Assert.Equal(1, MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_budget_cutoffs_total", $"tenant=\"{Tenant}\""));

        // Used up: the next stream is refused before it starts, as without the cutoff.
        using (var refused = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 400), key)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Contains("insufficient_quota", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Room for another ~60 tokens: the openai client streams them, then raises our event.
        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, $"/api/tenants/{Tenant}", """{"budget_tokens":120}""")).Status);
        var result = await NodeChat.StreamAsync(gateway, maxTokens: 400, key);
        Assert.False(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.True(result.GetProperty("apiError").GetBoolean(), result.ToString());
        Assert.Equal("budget_exhausted", result.GetProperty("code").GetString());
        Assert.NotEqual("", result.GetProperty("text").GetString());
        tenant = await Fleet.TenantAfterAsync(gateway.Admin, Tenant, requests: 2, handled: 3); // the 429 is counted, not accounted
        Assert.Equal((120L, 0L), (tenant.GetProperty("spent_tokens").GetInt64(), tenant.GetProperty("budget_left_tokens").GetInt64()));
        Assert.Equal(2, MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_budget_cutoffs_total", $"tenant=\"{Tenant}\""));

        // A stream that fits ends normally, charged its exact usage; nothing stays held.
        Assert.Equal(HttpStatusCode.OK, (await AdminApi.SendAsync(gateway.Admin, HttpMethod.Patch, $"/api/tenants/{Tenant}", """{"budget_tokens":10000}""")).Status);
        long exact;
        using (var fits = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 8, streamOptions: "{\"include_usage\":true}"), key)))
        {
            var text = await fits.Content.ReadAsStringAsync();
            Assert.DoesNotContain("\"error\"", text, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
            var usageEvent = text.Split("\n\n").Single(e => e.Contains("\"usage\":{", StringComparison.Ordinal));
            using var usage = JsonDocument.Parse(usageEvent["data: ".Length..]);
            exact = usage.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt64();
            Assert.True(ContentEvents(text) > 0, text);
        }

        tenant = await Fleet.TenantAfterAsync(gateway.Admin, Tenant, requests: 3, handled: 4);
        Assert.Equal(120 + exact, tenant.GetProperty("spent_tokens").GetInt64());
        Assert.Equal(10_000 - 120 - exact, tenant.GetProperty("budget_left_tokens").GetInt64());
        Assert.Equal(2, MetricsText.Value(await gateway.Admin.GetStringAsync("/metrics"), "llm_gateway_budget_cutoffs_total", $"tenant=\"{Tenant}\""));
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

    private static async Task<JsonElement> TenantAsync(BinaryGateway gateway)
    {
        using var json = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/tenants"));
        return json.RootElement.EnumerateArray().Single(t => t.GetProperty("name").GetString() == Tenant).Clone();
    }

    // The tenant's row of the ledger's totals; null until its first row is written.
    private static async Task<JsonElement?> LedgerRowAsync(BinaryGateway gateway)
    {
        using var json = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/usage?by=tenant&since=2000-01-01"));
        return json.RootElement.GetProperty("rows").EnumerateArray().Where(r => r.GetProperty("key").GetString() == Tenant).Select(r => (JsonElement?)r.Clone()).FirstOrDefault();
    }
}
