using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// [telemetry] max_tenant_series through the whole gateway: the first N tenants seen keep their
// series in every metric labelled by tenant, the N+1-th is counted in tenant="other", and a reload
// that raises the cap lets a new tenant in but leaves the folded one where it was.
public class TenantSeriesCapTests
{
    private const string BetaKey = "sk-test-beta";
    private const string GammaKey = "sk-test-gamma";

    [Fact]
    public async Task Metrics_PastMaxTenantSeries_FoldTheNextTenantIntoOther_AndAReloadLetsOnlyNewOnesIn()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, extraToml: Extra(cap: 1));

        await SendAsync(gateway, TestGateway.Key, "acme", expectedRequests: 1);
        await SendAsync(gateway, BetaKey, "other", expectedRequests: 2);
        var metrics = await gateway.MetricsAsync();
        Assert.False(Fleet.HasSeries(metrics, "llm_gateway_tokens_total", "tenant=\"beta\""), "beta has a series of its own");
        Assert.False(Fleet.HasSeries(metrics, "llm_rate_limiter_requests_total", "tenant=\"beta\""), "beta has a series of its own");
        Assert.True(MetricsText.Value(metrics, "llm_rate_limiter_requests_total", "tenant=\"other\"") == 1);

        // Raised to 3: gamma (new) gets its own series; beta stays in other.
        await File.WriteAllTextAsync(gateway.ConfigPath, TestGateway.Toml(gateway.Workers, extra: Extra(cap: 3)));
        using (var reload = await gateway.Admin.PostAsync("/api/config/reload", null))
        {
            Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        }

        await SendAsync(gateway, GammaKey, "gamma", expectedRequests: 3);
        await SendAsync(gateway, BetaKey, "other", expectedRequests: 4);
        metrics = await gateway.MetricsAsync();
        Assert.False(Fleet.HasSeries(metrics, "llm_gateway_tokens_total", "tenant=\"beta\""), "beta has a series of its own after the reload");
        Assert.Equal(2, MetricsText.Value(metrics, "llm_rate_limiter_requests_total", "tenant=\"other\""));
        Assert.Equal(1, MetricsText.Value(metrics, "llm_rate_limiter_requests_total", "tenant=\"gamma\""));
    }

    // rpm on both new tenants: their requests reach llm_rate_limiter_requests_total as well.
    private static string Extra(int cap) => $"""

        [[tenants]]
        name = "beta"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(BetaKey)}"]
        rpm = 1000

        [[tenants]]
        name = "gamma"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(GammaKey)}"]
        rpm = 1000

        [telemetry]
        max_tenant_series = {cap}
        """;

    // One request; its tokens are read once it is counted (the account stage runs before).
    private static async Task SendAsync(TestGateway gateway, string key, string label, int expectedRequests)
    {
        using (var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4), key)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var metrics = string.Empty;
        await TestGateway.WaitUntilAsync(async () => Fleet.Sum(metrics = await gateway.MetricsAsync(), "llm_gateway_requests_total") == expectedRequests, $"{expectedRequests} requests counted");
        Assert.True(MetricsText.Value(metrics, "llm_gateway_tokens_total", $"tenant=\"{label}\"", "kind=\"completion\"") > 0, $"no tokens in tenant=\"{label}\"");
    }
}
