using System.Net;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

public sealed class ControlEndpointTests
{
    [Fact]
    public async Task PostFaults_SnakeCaseBody_FlipsSwitches()
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync("/sim/faults", """{"unhealthy_health":true,"http500_rate":0.25,"reset_after_tokens":4,"first_byte_delay_ms":1500,"inter_token_delay_ms":20,"garbage_metrics":true}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var faults = worker.Faults;
        Assert.True(faults.UnhealthyHealth);
        Assert.True(faults.GarbageMetrics);
        Assert.False(faults.MissingMetrics);
        Assert.Equal(0.25, faults.Http500Rate);
        Assert.Equal(4, faults.ResetAfterTokens);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), faults.FirstByteDelay);
        Assert.Equal(TimeSpan.FromMilliseconds(20), faults.InterTokenDelay);
        using var json = JsonDocument.Parse(body);
        Assert.Equal(1500, json.RootElement.GetProperty("first_byte_delay_ms").GetDouble());
        using var health = await worker.Client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
    }

    [Fact]
    public async Task PostFaults_Clear_TurnsEverythingOff()
    {
        await using var worker = await TestWorker.StartAsync();
        worker.Faults.Hang = true;
        worker.Faults.MissingMetrics = true;

        var (response, _) = await worker.SendAsync("/sim/faults", """{"clear":true}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(worker.Faults.Hang);
        Assert.False(worker.Faults.MissingMetrics);
    }

    [Fact]
    public async Task PostFaults_SpeedFactor_SetsTheEngineSlowdown_AndClearRestoresFullSpeed()
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, body) = await worker.SendAsync("/sim/faults", """{"speed_factor":0.2}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0.2, worker.Faults.SpeedFactor);
        using (var json = JsonDocument.Parse(body))
        {
            Assert.Equal(0.2, json.RootElement.GetProperty("speed_factor").GetDouble());
        }

        (response, _) = await worker.SendAsync("/sim/faults", """{"clear":true}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1.0, worker.Faults.SpeedFactor);
    }

    [Theory]
    [InlineData("""{"hang":true,"speed_factor":0}""")]
    [InlineData("""{"hang":true,"speed_factor":-1}""")]
    [InlineData("""{"hang":true,"no_such_fault":1}""")]
    [InlineData("""{"hang":true,"http500_rate":2}""")]
    [InlineData("""{"hang":"yes"}""")]
    [InlineData("not json")]
    public async Task PostFaults_BadBody_Returns400AndChangesNothing(string json)
    {
        await using var worker = await TestWorker.StartAsync();

        var (response, _) = await worker.SendAsync("/sim/faults", json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(worker.Faults.Hang);
    }

    [Fact]
    public async Task GetStats_AfterRequests_ReportsCounters()
    {
        await using var worker = await TestWorker.StartAsync();
        await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("one", maxTokens: 3, ignoreEos: true));
        await worker.SendAsync(TestWorker.ChatPath, TestWorker.Chat("two", maxTokens: 4, ignoreEos: true));

        var body = await worker.GetStringAsync("/sim/stats");

        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        Assert.Equal(2, root.GetProperty("requests_total").GetInt64());
        Assert.Equal(2, root.GetProperty("completed").GetInt64());
        Assert.Equal(7, root.GetProperty("generation_tokens").GetInt64());
        Assert.Equal(0, root.GetProperty("running").GetInt32());
        Assert.Equal("sim-0", root.GetProperty("name").GetString());
    }
}
