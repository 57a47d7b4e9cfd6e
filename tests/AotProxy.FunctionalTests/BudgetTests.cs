using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Token and spend budgets end to end: served, then capped (the worker generates exactly the
// rewritten max_tokens: ignore_eos), then 429 insufficient_quota; "reject"; a reload that raises
// the budget; and /api/tenants showing what is left.
public class BudgetTests
{
    private const string BudgetKey = "sk-test-budget";

    // The inspector's estimate of Json's prompt: 4 bytes of its text per token, rounded up.
    private static readonly long PromptEstimate = (Encoding.UTF8.GetByteCount("Hello there") + 3) / 4;

    [Fact]
    public async Task MonthlyTokenBudget_ServesThenCapsMaxTokensThenIs429InsufficientQuota()
    {
        await using var gateway = await StartAsync("monthly_budget_tokens = 300\nrpm = 100");

        var (first, firstUsage) = await ChatAsync(gateway, maxTokens: 20);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(20, firstUsage.Completion);
        var left = 300 - firstUsage.Total;
        var tenant = await TenantAfterAsync(gateway, requests: 1, monthSpent: firstUsage.Total);
        Assert.Equal(left, tenant.GetProperty("monthly_budget_left_tokens").GetInt64());

        // max_tokens 1000 does not fit: the worker gets what is left after the prompt estimate.
        var (second, secondUsage) = await ChatAsync(gateway, maxTokens: 1000);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(left - PromptEstimate, secondUsage.Completion);
        Assert.Equal("length", secondUsage.FinishReason);
        tenant = await TenantAfterAsync(gateway, requests: 2, monthSpent: firstUsage.Total + secondUsage.Total);

        // What is left no longer covers a prompt.
        using var refused = await gateway.Client.SendAsync(Post(Json(20)));
        var error = await AssertInsufficientQuotaAsync(refused);
        var now = DateTimeOffset.UtcNow;
        var nextMonth = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);
        Assert.StartsWith("You exceeded your current quota: the monthly token budget of tenant bt (monthly_budget_tokens 300 tokens) is used up", error, StringComparison.Ordinal);
        Assert.EndsWith($"It resets at {nextMonth:yyyy-MM-dd}T00:00:00Z.", error, StringComparison.Ordinal);
        Assert.InRange(int.Parse(Header(refused, "retry-after"), CultureInfo.InvariantCulture), (nextMonth - now).TotalSeconds - 30, (nextMonth - now).TotalSeconds + 1);
        Assert.Equal("100", Header(refused, "x-ratelimit-limit-requests"));
        Assert.InRange(int.Parse(Header(refused, "x-ratelimit-remaining-requests"), CultureInfo.InvariantCulture), 98, 100); // two served, refilling at 100/min
        Assert.Equal(2, gateway.Workers[0].Stats.RequestsTotal);
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_rate_limiter_rejected_total", "tenant=\"bt\"", "reason=\"budget_tokens\""));
        Assert.Equal(3, MetricsText.Value(metrics, "llm_rate_limiter_requests_total", "tenant=\"bt\""));

        tenant = Fleet.Named(await Fleet.GetJsonAsync(gateway, "/api/tenants"), "bt");
        Assert.Equal(300, tenant.GetProperty("monthly_budget_tokens").GetInt64());
        Assert.Equal(Math.Max(0, 300 - firstUsage.Total - secondUsage.Total), tenant.GetProperty("monthly_budget_left_tokens").GetInt64());
        Assert.Equal(firstUsage.Total + secondUsage.Total, tenant.GetProperty("spent_tokens").GetInt64());
        Assert.Equal(JsonValueKind.Null, tenant.GetProperty("budget_left_tokens").ValueKind);
        Assert.Equal(JsonValueKind.Null, tenant.GetProperty("budget_left_usd").ValueKind);
        metrics = await gateway.MetricsAsync();
        Assert.Equal(Math.Max(0, 300 - firstUsage.Total - secondUsage.Total), MetricsText.Value(metrics, "llm_rate_limiter_budget_left", "tenant=\"bt\"", "budget=\"monthly_tokens\""));
        Assert.True(Fleet.HasSeries(metrics, "llm_rate_limiter_budget_left", "budget=\"monthly_tokens\""));
        Assert.False(Fleet.HasSeries(metrics, "llm_rate_limiter_budget_left", "budget=\"tokens\"")); // no lifetime budget
        Assert.False(Fleet.HasSeries(metrics, "llm_rate_limiter_budget_left", "tenant=\"acme\""));
        var acme = Fleet.Named(await Fleet.GetJsonAsync(gateway, "/api/tenants"), "acme");
        Assert.Equal(JsonValueKind.Null, acme.GetProperty("spent_tokens").ValueKind); // no budget, nothing counted
    }

    [Fact]
    public async Task RejectOverrun_MaxTokensAboveWhatIsLeft_Is429AndNothingGoesUpstream()
    {
        await using var gateway = await StartAsync("monthly_budget_tokens = 1000", extra: "[limits]\nbudget_overrun = \"reject\"\n");

        using var refused = await gateway.Client.SendAsync(Post(Json(5000)));

        var error = await AssertInsufficientQuotaAsync(refused);
        Assert.Contains("has 1000 tokens left, less than this request", error, StringComparison.Ordinal);
        Assert.Contains("limits.budget_overrun is \"reject\"", error, StringComparison.Ordinal);
        Assert.True(refused.Headers.Contains("retry-after")); // a monthly budget: it resets
        Assert.Equal(0, gateway.Workers[0].Stats.RequestsTotal);

        var (served, usage) = await ChatAsync(gateway, maxTokens: 10);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(10, usage.Completion); // not rewritten
        Assert.Equal(1, MetricsText.Value(await gateway.MetricsAsync(), "llm_rate_limiter_rejected_total", "tenant=\"bt\"", "reason=\"budget_tokens\""));
    }

    [Fact]
    public async Task SpendBudget_ChargesAtThePrices_CapsAtTheOutputPrice_ThenIs429WithADaysRetryAfter()
    {
        // $10 / $20 per million: 10,000 and 20,000 nano-USD per token; $0.001 = 1,000,000 nano-USD.
        await using var gateway = await StartAsync("budget_usd = 0.001", extra: $"""
            [[prices]]
            model = "{TestGateway.Model}"
            input_per_million = 10.0
            output_per_million = 20.0

            [[prices]]
            model = "*"
            input_per_million = 1000.0
            output_per_million = 1000.0
            """);

        var (first, firstUsage) = await ChatAsync(gateway, maxTokens: 10);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var firstCost = (firstUsage.Prompt * 10_000) + (firstUsage.Completion * 20_000);
        var tenant = await TenantAfterAsync(gateway, requests: 1, monthSpent: firstUsage.Total);
        Assert.Equal(firstCost / 1e9m, tenant.GetProperty("spent_usd").GetDecimal());
        Assert.Equal((1_000_000 - firstCost) / 1e9m, tenant.GetProperty("budget_left_usd").GetDecimal());
        Assert.Equal(0.001m, tenant.GetProperty("budget_usd").GetDecimal());

        // What is left, less the prompt estimate at the input price, buys this many output tokens.
        var (second, secondUsage) = await ChatAsync(gateway, maxTokens: 1000);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal((1_000_000 - firstCost - (PromptEstimate * 10_000)) / 20_000, secondUsage.Completion);
        var secondCost = (secondUsage.Prompt * 10_000) + (secondUsage.Completion * 20_000);
        tenant = await TenantAfterAsync(gateway, requests: 2, monthSpent: firstUsage.Total + secondUsage.Total);
        Assert.Equal((firstCost + secondCost) / 1e9m, tenant.GetProperty("month_spent_usd").GetDecimal());

        using var refused = await gateway.Client.SendAsync(Post(Json(10)));
        var error = await AssertInsufficientQuotaAsync(refused);
        Assert.StartsWith("You exceeded your current quota: the spend budget of tenant bt (budget_usd $0.001) is used up", error, StringComparison.Ordinal);
        Assert.Equal("86400", Header(refused, "retry-after")); // a lifetime budget: until an operator raises it
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(1, MetricsText.Value(metrics, "llm_rate_limiter_rejected_total", "tenant=\"bt\"", "reason=\"budget_usd\""));
        Assert.Equal((double)Math.Max(0, 1_000_000 - firstCost - secondCost) / 1e9, MetricsText.Value(metrics, "llm_rate_limiter_budget_left", "tenant=\"bt\"", "budget=\"usd\""), 12);
    }

    [Fact]
    public async Task Reload_RaisingTheBudget_LetsRequestsThroughAgainAndKeepsTheSpend()
    {
        const string Tenant = "monthly_budget_tokens = 100";
        await using var gateway = await StartAsync(Tenant);
        var (capped, cappedUsage) = await ChatAsync(gateway, maxTokens: 500);
        Assert.Equal(HttpStatusCode.OK, capped.StatusCode);
        Assert.True(cappedUsage.Completion < 100);
        await TenantAfterAsync(gateway, requests: 1, monthSpent: cappedUsage.Total);
        using (var refused = await gateway.Client.SendAsync(Post(Json(10))))
        {
            await AssertInsufficientQuotaAsync(refused);
        }

        await File.WriteAllTextAsync(gateway.ConfigPath, Toml(gateway, "monthly_budget_tokens = 100000"));
        var reload = await gateway.Admin.PostAsync("/api/config/reload", null);
        Assert.True(reload.IsSuccessStatusCode, await reload.Content.ReadAsStringAsync());

        var (served, usage) = await ChatAsync(gateway, maxTokens: 500);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(500, usage.Completion);
        var tenant = await TenantAfterAsync(gateway, requests: 3, monthSpent: cappedUsage.Total + usage.Total); // the capped one, the 429, the served one
        Assert.Equal(100_000 - cappedUsage.Total - usage.Total, tenant.GetProperty("monthly_budget_left_tokens").GetInt64());
    }

    private static Task<TestGateway> StartAsync(string budget, string extra = "") =>
        TestGateway.StartAsync(workers: 1, extraToml: Tenant(budget, extra));

    private static string Toml(TestGateway gateway, string budget, string extra = "") =>
        TestGateway.Toml(gateway.Workers, Tenant(budget, extra));

    private static string Tenant(string budget, string extra) => $"""

        [[tenants]]
        name = "bt"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(BudgetKey)}"]
        {budget}

        {extra}
        """;

    // ignore_eos: the simulator generates exactly max_tokens, so a cap shows in the usage.
    private static string Json(int maxTokens) =>
        $$"""{"model":"{{TestGateway.Model}}","messages":[{"role":"user","content":"Hello there"}],"max_tokens":{{maxTokens}},"ignore_eos":true}""";

    private static HttpRequestMessage Post(string json) => TestGateway.Post("v1/chat/completions", json, BudgetKey);

    private static async Task<(HttpResponseMessage Response, (long Prompt, long Completion, long Total, string? FinishReason) Usage)> ChatAsync(TestGateway gateway, int maxTokens)
    {
        var response = await gateway.Client.SendAsync(Post(Json(maxTokens)));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        using var json = JsonDocument.Parse(body);
        var usage = json.RootElement.GetProperty("usage");
        var prompt = usage.GetProperty("prompt_tokens").GetInt64();
        var completion = usage.GetProperty("completion_tokens").GetInt64();
        var finish = json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString();
        return (response, (prompt, completion, prompt + completion, finish));
    }

    // The budget is charged in the handler's finally, which may run just after the client has the
    // response, and there the month's tokens before its nanos (TenantBudgetState.Settle); the request
    // is counted after both. Once the `requests` sent so far are counted, the month must show
    // exactly what the responses said.
    private static async Task<JsonElement> TenantAfterAsync(TestGateway gateway, int requests, long monthSpent)
    {
        await gateway.MetricsAfterAsync(requests);
        var tenant = Fleet.Named(await Fleet.GetJsonAsync(gateway, "/api/tenants"), "bt");
        Assert.Equal(monthSpent, tenant.GetProperty("month_spent_tokens").GetInt64());
        return tenant;
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? Assert.Single(values) : throw new Xunit.Sdk.XunitException($"no {name} header");

    // 429 insufficient_quota in OpenAI's shape; returns the message.
    private static async Task<string> AssertInsufficientQuotaAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error");
        Assert.Equal("insufficient_quota", error.GetProperty("type").GetString());
        Assert.Equal("insufficient_quota", error.GetProperty("code").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        return error.GetProperty("message").GetString()!;
    }
}
