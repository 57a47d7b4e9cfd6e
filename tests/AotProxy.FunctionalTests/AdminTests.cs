using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

public class AdminTests
{
    [Fact]
    public async Task Probes_Metrics_AndStatus_AnswerOnTheAdminListener()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2);
        using (await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false))))
        {
        }

        Assert.Equal("ok", await gateway.Admin.GetStringAsync("/health"));
        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.GetAsync("/ready")).StatusCode);

        var metrics = await gateway.MetricsAfterAsync(1); // the request's series, written in its finally
        foreach (var name in new[] { "llm_gateway_requests_total", "llm_gateway_active_requests", "llm_gateway_request_latency_seconds", "llm_gateway_ttft_seconds", "llm_gateway_healthy_workers", "llm_gateway_tokens_total", "llm_gateway_config_reloads_total", "llm_worker_in_flight" })
        {
            Assert.Contains("# TYPE " + name, metrics, StringComparison.Ordinal);
        }

        Assert.Equal(2, MetricsText.Value(metrics, "llm_gateway_healthy_workers", $"model=\"{TestGateway.Model}\""));

        using var status = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/status"));
        Assert.Equal(1, status.RootElement.GetProperty("config").GetProperty("revision").GetInt64());
        Assert.True(status.RootElement.GetProperty("totals").GetProperty("completion_tokens").GetInt64() > 0);
        var runtime = status.RootElement.GetProperty("runtime");
        Assert.True(runtime.GetProperty("allocated_bytes").GetInt64() > 0);
        Assert.True(runtime.GetProperty("working_set_bytes").GetInt64() > 0);
        Assert.True(runtime.GetProperty("cpu_seconds").GetDouble() > 0);
    }

    [Fact]
    public async Task AdminToken_GuardsTheApiButNotTheProbes()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, adminToken: "admin-secret");

        Assert.Equal(HttpStatusCode.Unauthorized, (await gateway.Admin.GetAsync("/api/status")).StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/status") { Headers = { Authorization = new("Bearer", "admin-secrets") } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await gateway.Admin.SendAsync(wrong)).StatusCode);
        using var right = new HttpRequestMessage(HttpMethod.Get, "/api/status") { Headers = { Authorization = new("Bearer", "admin-secret") } };
        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.SendAsync(right)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.GetAsync("/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.GetAsync("/ready")).StatusCode);
    }

    [Fact]
    public async Task Drain_TakesTheWorkerOutOfRotation_AndReadyFollowsRoutableWorkers()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1);

        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.PostAsync("/api/workers/sim-0/drain", null)).StatusCode);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await gateway.Admin.GetAsync("/ready")).StatusCode);
        using var refused = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false)));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.True(refused.Headers.Contains("retry-after"));

        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.PostAsync("/api/workers/sim-0/undrain", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gateway.Admin.GetAsync("/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gateway.Admin.PostAsync("/api/workers/nobody/drain", null)).StatusCode);
    }
}
