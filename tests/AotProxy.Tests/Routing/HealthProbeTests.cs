using AotProxy.Routing;
using AotProxy.Simulator;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

public class HealthProbeTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(300);

    [Fact]
    public async Task Probe_Simulator_IsHealthy()
    {
        await using var worker = await WorkerScrapeTests.StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();

        var result = await HealthProbe.ProbeAsync(client, new Uri(worker.BaseUri, "/health"), Long, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.Healthy, 200), result);
        Assert.True(result.IsHealthy);
    }

    [Fact]
    public async Task Probe_SimulatorFailingHealthFault_IsUnhealthyThenHealthyOnceCleared()
    {
        await using var worker = await WorkerScrapeTests.StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();
        var url = new Uri(worker.BaseUri, "/health");
        worker.Options.Faults.UnhealthyHealth = true;

        var failing = await HealthProbe.ProbeAsync(client, url, Long, CancellationToken.None);
        worker.Options.Faults.UnhealthyHealth = false;
        var healthy = await HealthProbe.ProbeAsync(client, url, Long, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.HttpStatus, 503), failing);
        Assert.False(failing.IsHealthy);
        Assert.True(healthy.IsHealthy);
    }

    [Fact]
    public async Task Probe_PathTheServerDoesNotHave_IsUnhealthy404()
    {
        await using var worker = await WorkerScrapeTests.StartSimulatorAsync(new SimulatorOptions());
        using var client = new HttpClient();

        var result = await HealthProbe.ProbeAsync(client, new Uri(worker.BaseUri, "/healthz"), Long, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.HttpStatus, 404), result);
    }

    [Fact]
    public async Task Probe_ServerThatNeverAnswers_IsTimeout()
    {
        await using var server = new LoopbackTcpServer();
        using var client = new HttpClient();

        var result = await HealthProbe.ProbeAsync(client, server.Url("/health"), Short, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.Timeout, 0), result);
    }

    [Fact]
    public async Task Probe_ClosedPort_IsConnectFailed()
    {
        using var client = new HttpClient();

        var result = await HealthProbe.ProbeAsync(client, LoopbackTcpServer.ClosedPortUrl("/health"), Long, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.ConnectFailed, 0), result);
    }

    [Fact]
    public async Task Probe_ConnectionClosedWithoutAnAnswer_IsResponseFailed()
    {
        await using var server = new LoopbackTcpServer((_, _) => Task.CompletedTask);
        using var client = new HttpClient();

        var result = await HealthProbe.ProbeAsync(client, server.Url("/health"), Long, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.ResponseFailed, 0), result);
    }

    // The status line is the answer; a body that never finishes does not hold the probe.
    [Fact]
    public async Task Probe_200WhoseBodyNeverArrives_IsHealthy()
    {
        await using var server = new LoopbackTcpServer(async (stream, ct) =>
        {
            await LoopbackTcpServer.WriteAsync(stream, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", ct);
            await stream.FlushAsync(ct);
            await Task.Delay(Timeout.Infinite, ct);
        });
        using var client = new HttpClient();

        var result = await HealthProbe.ProbeAsync(client, server.Url("/health"), Long, CancellationToken.None);

        Assert.Equal(new HealthProbeResult(HealthOutcome.Healthy, 200), result);
    }

    [Fact]
    public async Task Probe_CallerCancels_Throws()
    {
        await using var server = new LoopbackTcpServer();
        using var client = new HttpClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            async () => await HealthProbe.ProbeAsync(client, server.Url("/health"), Long, cts.Token));
    }

    [Fact]
    public void DefaultResult_IsNotHealthy()
    {
        Assert.False(default(HealthProbeResult).IsHealthy);
    }
}
