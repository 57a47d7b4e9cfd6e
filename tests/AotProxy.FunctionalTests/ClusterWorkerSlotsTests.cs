using System.Globalization;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using static AotProxy.FunctionalTests.Support.ClusterFleet;

namespace AotProxy.FunctionalTests;

// Each worker's max_concurrency and drain over replicas of the real binary (the AOT one in CI) and
// a real redis-server on loopback: the measurement was 12 at once on a worker with
// max_concurrency = 4 behind 3 replicas, and a drain reached only the replica that was told.
public sealed class ClusterWorkerSlotsTests : IAsyncLifetime
{
    private const int MaxConcurrency = 4;

    private ClusterFleet _fleet = null!;

    // The simulator itself would run 64 at once; slow decoding (8 tokens at 5/s) keeps each
    // request on it for over a second, so 12 sent together overlap.
    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(
            new SimulatorOptions { Name = "sim-slots", Model = TestGateway.Model, DecodeTokensPerSecond = 5 }, MaxConcurrency);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task ThreeReplicas_NeverRunMoreThanTheWorkersMaxConcurrency_AndAll12RequestsComplete()
    {
        string[] names = ["replica-a", "replica-b", "replica-c"];
        foreach (var name in names)
        {
            await _fleet.StartReplicaAsync(name);
        }

        foreach (var replica in _fleet.Replicas)
        {
            await WaitForMembersAsync(replica, names); // each has its connection to the store
        }

        var clients = _fleet.Replicas.Select(r => new HttpClient { BaseAddress = r.DataUri, Timeout = TimeSpan.FromSeconds(60) }).ToList();
        using var metrics = new HttpClient { BaseAddress = _fleet.Worker.BaseUri, Timeout = TimeSpan.FromSeconds(10) };
        using var done = new CancellationTokenSource();
        var sampled = SampleRunningAsync(metrics, done.Token);
        try
        {
            var answers = await Task.WhenAll(Enumerable.Range(0, 3 * MaxConcurrency).Select(async i =>
            {
                using var response = await clients[i % clients.Count].SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 8)));
                return (response.StatusCode, QueueMs: Milliseconds(response, "x-gateway-queue-ms"), OverheadMs: Milliseconds(response, "x-gateway-overhead-ms"));
            }));

            Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));

            // Each replica admitted its 4 at once; 8 of the 12 then waited fleet-wide for a slot
            // while the first 4 decoded (1.6 s each). That wait is queued time, not the gateway's
            // overhead.
            Assert.True(answers.Count(a => a.QueueMs > 0) >= 2 * MaxConcurrency, string.Join(", ", answers.Select(a => $"{a.QueueMs}/{a.OverheadMs}")));
            Assert.True(answers.Max(a => a.QueueMs) >= 1000, string.Join(", ", answers.Select(a => $"{a.QueueMs}/{a.OverheadMs}")));
            Assert.All(answers, a => Assert.True(a.OverheadMs < 1000, $"x-gateway-overhead-ms {a.OverheadMs} counts a fleet-wide wait (x-gateway-queue-ms {a.QueueMs})"));
        }
        finally
        {
            await done.CancelAsync();
            clients.ForEach(c => c.Dispose());
        }

        // The worker's own /metrics, sampled throughout, and its high-water mark of requests in
        // the engine (running + waiting), which no sample can miss.
        var most = await sampled;
        Assert.InRange(most, 1, MaxConcurrency);
        Assert.Equal(MaxConcurrency, _fleet.Worker.Stats.MaxInEngine);
        // The simulator counts a JSON answer as completed after it flushed its last byte, which
        // the client may have read first (Content-Length): wait for the count, then it must be exact.
        await TestGateway.WaitUntilAsync(() => Task.FromResult(_fleet.Worker.Stats.Completed >= 3 * MaxConcurrency), "the worker counted every answer");
        Assert.Equal(3 * MaxConcurrency, _fleet.Worker.Stats.Completed);
    }

    [Fact]
    public async Task DrainOnOneReplica_StopsTheOthersSendingToTheWorker_AndUndrainLikewise()
    {
        string[] names = ["replica-a", "replica-b"];
        foreach (var name in names)
        {
            await _fleet.StartReplicaAsync(name);
        }

        var (a, b) = (_fleet.Replicas[0], _fleet.Replicas[1]);
        await WaitForMembersAsync(b, names);
        using var adminA = new HttpClient { BaseAddress = a.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var adminB = new HttpClient { BaseAddress = b.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var clientB = new HttpClient { BaseAddress = b.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(HttpStatusCode.OK, await SendAsync(clientB));

        using (var drained = await adminA.PostAsync($"/api/workers/{_fleet.Worker.Options.Name}/drain", null))
        {
            Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        }

        await TestGateway.WaitUntilAsync(async () => await DrainingAsync(adminB), "replica-b shows the worker drained");
        var sent = _fleet.Worker.Stats.RequestsTotal;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await SendAsync(clientB)); // its one worker takes nothing
        Assert.Equal(sent, _fleet.Worker.Stats.RequestsTotal);

        using (var undrained = await adminA.PostAsync($"/api/workers/{_fleet.Worker.Options.Name}/undrain", null))
        {
            Assert.Equal(HttpStatusCode.OK, undrained.StatusCode);
        }

        await TestGateway.WaitUntilAsync(async () => !await DrainingAsync(adminB), "replica-b shows the worker undrained");
        Assert.Equal(HttpStatusCode.OK, await SendAsync(clientB));
        Assert.Equal(sent + 1, _fleet.Worker.Stats.RequestsTotal);
    }

    // failure_threshold = 2: two 500s in a row open replica A's breaker (for 60 s); replica B,
    // which saw no failure, opens its own until the same time and sends nothing to the worker.
    [Fact]
    public async Task ABreakerThatOpensOnOneReplica_OpensOnTheOthers()
    {
        const string Breaker = """

            [circuit_breaker]
            failure_threshold = 2
            open_timeout = "60s"

            """;
        string[] names = ["replica-a", "replica-b"];
        foreach (var name in names)
        {
            await _fleet.StartReplicaAsync(name, Breaker);
        }

        var (a, b) = (_fleet.Replicas[0], _fleet.Replicas[1]);
        await WaitForMembersAsync(b, names);
        using var adminB = new HttpClient { BaseAddress = b.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var clientA = new HttpClient { BaseAddress = a.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var clientB = new HttpClient { BaseAddress = b.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal("closed", await BreakerAsync(adminB));

        _fleet.Worker.Options.Faults.Http500Rate = 1;
        Assert.Equal(HttpStatusCode.InternalServerError, await SendAsync(clientA));
        Assert.Equal(HttpStatusCode.InternalServerError, await SendAsync(clientA));

        await TestGateway.WaitUntilAsync(async () => await BreakerAsync(adminB) == "open", "replica-b shows the worker's breaker open");
        var sent = _fleet.Worker.Stats.RequestsTotal;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await SendAsync(clientB));
        Assert.Equal(sent, _fleet.Worker.Stats.RequestsTotal);
    }

    private static async Task<string?> BreakerAsync(HttpClient admin)
    {
        using var workers = JsonDocument.Parse(await admin.GetStringAsync("/api/workers"));
        return workers.RootElement.EnumerateArray().Single().GetProperty("breaker").GetString();
    }

    private static async Task<HttpStatusCode> SendAsync(HttpClient client)
    {
        using var response = await client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 1)));
        return response.StatusCode;
    }

    private static async Task<bool> DrainingAsync(HttpClient admin)
    {
        using var workers = JsonDocument.Parse(await admin.GetStringAsync("/api/workers"));
        return workers.RootElement.EnumerateArray().Single().GetProperty("draining").GetBoolean();
    }

    // The largest vllm:num_requests_running the worker's /metrics showed until `done`.
    private static async Task<int> SampleRunningAsync(HttpClient metrics, CancellationToken done)
    {
        var most = 0;
        while (!done.IsCancellationRequested)
        {
            try
            {
                var text = await metrics.GetStringAsync("/metrics", done);
                foreach (var line in text.Split('\n'))
                {
                    if (line.StartsWith("vllm:num_requests_running{", StringComparison.Ordinal))
                    {
                        most = Math.Max(most, (int)double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
                    }
                }

                await Task.Delay(20, done);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return most;
    }

    private static double Milliseconds(HttpResponseMessage response, string header) =>
        double.Parse(response.Headers.GetValues(header).Single(), CultureInfo.InvariantCulture);
}
