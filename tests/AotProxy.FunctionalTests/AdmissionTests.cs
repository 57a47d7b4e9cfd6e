using System.Net;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// The admit stage end to end: real gateway, real simulated worker with few sequence slots, so
// that requests really wait for capacity, and the order in which they got it is observable.
public class AdmissionTests
{
    private const string HeavyKey = "sk-test-heavy";
    private const string LightKey = "sk-test-light";

    [Fact]
    public async Task FairShare_TwoBackloggedTenants_AreServedByTheirWeights()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.MaxNumSeqs = 1, extraToml: $"""

            [[tenants]]
            name = "heavy"
            weight = 3
            api_key_sha256 = ["{ApiKeyIndex.HashKey(HeavyKey)}"]

            [[tenants]]
            name = "light"
            weight = 1
            api_key_sha256 = ["{ApiKeyIndex.HashKey(LightKey)}"]
            """);
        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(5);

        // Each tenant keeps 3 requests outstanding (closed loop) until 80 are served in all; one
        // slot, so every grant after the first few is the scheduler's choice between the two.
        var served = new Dictionary<string, int> { [HeavyKey] = 0, [LightKey] = 0 };
        var total = 0;
        async Task Client(string key)
        {
            while (Interlocked.Increment(ref total) <= 80)
            {
                using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 3), key));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                lock (served)
                {
                    served[key]++;
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 3).SelectMany(_ => new[] { Client(HeavyKey), Client(LightKey) })).WaitAsync(TimeSpan.FromSeconds(60));

        var heavyShare = served[HeavyKey] / (double)(served[HeavyKey] + served[LightKey]);
        Assert.InRange(heavyShare, 0.65, 0.85); // 3:1 weights: 0.75

        // A request frees its slot, then is counted, in its finally, which may run after its client
        // has read the last byte: once all 80 are counted, every slot must be free and nobody queued.
        await Fleet.MetricsAfterAsync(gateway.Admin, 80);
        var queues = await Fleet.GetJsonAsync(gateway, "/api/queues");
        var model = queues.GetProperty("models")[0];
        Assert.Equal((0, 0), (model.GetProperty("in_use").GetInt32(), model.GetProperty("waiting").GetInt32()));
        Assert.Equal("fairshare", queues.GetProperty("policy").GetString());

        // /api/tenants: each tenant's configuration and what it used (every served answer had usage).
        var tenants = await Fleet.GetJsonAsync(gateway, "/api/tenants");
        var heavy = Fleet.Named(tenants, "heavy");
        Assert.Equal((3, served[HeavyKey]), (heavy.GetProperty("weight").GetInt32(), (int)heavy.GetProperty("requests").GetInt64()));
        Assert.Equal(served[LightKey] * 3, Fleet.Named(tenants, "light").GetProperty("completion_tokens").GetInt64());
        Assert.Equal((0, 0), (heavy.GetProperty("waiting").GetInt32(), heavy.GetProperty("in_flight").GetInt32()));
    }

    [Fact]
    public async Task Priority_AWaitingP0IsServedBeforeEarlierP4s()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.MaxNumSeqs = 1, extraToml: $"""

            [scheduler]
            policy = "priority"

            [[classes]]
            name = "default"
            priority = 4

            [[classes]]
            name = "urgent"
            priority = 0

            [[tenants]]
            name = "heavy"
            class = "urgent"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(HeavyKey)}"]
            """);
        // One slot held by a stream, then three P4 requests queue, then one P0 request.
        var first = await Queues.FirstServedAsync(gateway, TestGateway.Key, ["p4-0", "p4-1", "p4-2"], TestGateway.Key, "p0", HeavyKey);

        Assert.Equal("p0", first);
    }

    [Fact]
    public async Task Queued_ClientGoesAway_ItsPlaceIsFreed_AndTheOthersAreServed()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.MaxNumSeqs = 1);
        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(20);
        using var holder = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 100)), HttpCompletionOption.ResponseHeadersRead); // ~2 s

        using var gone = new CancellationTokenSource();
        var abandoned = gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)), gone.Token);
        var patient = gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)));
        await Queues.WaitForWaitingAsync(gateway, 2);
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        await TestGateway.WaitUntilAsync(
            async () => MetricsText.Value(await gateway.MetricsAsync(), "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"cancelled\"") == 1,
            "the gateway counts the abandoned wait");
        await holder.Content.ReadAsStringAsync();

        using (var response = await patient.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await TestGateway.WaitUntilAsync(async () => await Queues.InUseAsync(gateway) == 0, "every slot is free again");
        Assert.Equal(2, gateway.Workers[0].Stats.RequestsTotal); // the holder and the patient one: the abandoned request never reached the worker
    }

    [Fact]
    public async Task Storm_AbortsUpstreamErrorsAndQueueTimeouts_LeaveEverySlotFreeAndEveryQueueEmpty()
    {
        // Two workers of two slots; one answers 500 a third of the time (retried on the other or
        // passed through), requests last long enough to queue, and waits past 40 ms time out.
        await using var gateway = await TestGateway.StartAsync(workers: 2, configure: o => o.MaxNumSeqs = 2, extraToml: """

            [scheduler]
            queue_capacity = 16

            [[classes]]
            name = "default"
            max_queue_wait = "40ms"
            """);
        gateway.Workers[0].Options.Faults.Http500Rate = 0.33;
        foreach (var worker in gateway.Workers)
        {
            worker.Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(3);
        }

        var statuses = new int[2000];
        var random = new Random(5);
        var plans = Enumerable.Range(0, statuses.Length).Select(_ => (Abort: random.Next(4) == 0, AbortAfter: random.Next(1, 40), Stream: random.Next(2) == 0)).ToArray();
        var next = -1;
        async Task Client()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < statuses.Length)
            {
                var plan = plans[i];
                using var abort = new CancellationTokenSource();
                if (plan.Abort)
                {
                    abort.CancelAfter(plan.AbortAfter);
                }

                try
                {
                    using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(plan.Stream, maxTokens: 8, content: $"storm {i}")), abort.Token);
                    await response.Content.ReadAsStringAsync(abort.Token);
                    statuses[i] = (int)response.StatusCode;
                }
                catch (OperationCanceledException)
                {
                    statuses[i] = 499;
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Client())).WaitAsync(TimeSpan.FromSeconds(120));

        // Every kind of ending happened...
        Assert.Contains(200, statuses);
        Assert.Contains(499, statuses);
        Assert.Contains(503, statuses);
        // ...and left nothing behind: no slot held, nobody queued, no request in flight. A request
        // frees its slot first and then its tenant's in-flight count (ModelAdmission.Release), in its
        // finally, after its client may have read the last byte: wait for both before reading.
        await TestGateway.WaitUntilAsync(
            async () => (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models")[0] is var m
                && m.GetProperty("in_use").GetInt32() == 0
                && m.GetProperty("tenants").EnumerateArray().All(t => t.GetProperty("in_flight").GetInt32() == 0),
            "every slot is free again and no tenant has a request in flight");
        var model = (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models")[0];
        Assert.Equal(0, model.GetProperty("waiting").GetInt32());
        Assert.All(model.GetProperty("tenants").EnumerateArray(), t => Assert.Equal((0, 0), (t.GetProperty("waiting").GetInt32(), t.GetProperty("in_flight").GetInt32())));
        var metrics = await gateway.MetricsAsync();
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_active_requests"));
        Assert.Equal(0, MetricsText.Value(metrics, "llm_gateway_queue_depth", "class=\"default\""));
        Assert.True(MetricsText.Value(metrics, "llm_gateway_admissions_total", "class=\"default\"", "outcome=\"timed_out\"") > 0);

        // And the gateway still serves.
        using var after = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)));
        Assert.True(after.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadGateway, after.StatusCode.ToString());
    }

    // Issue 15, item 2: no timer refreshes admission's capacity; the change that adds capacity
    // does. Two workers of one slot each; sim-1 is away (drained, or failing its health checks),
    // so one request on sim-0, which hangs, fills the model, and the next one queues. sim-1's
    // return must hand it that slot while sim-0 still hangs: only the return can wake it.
    [Theory]
    [InlineData("undrained")]
    [InlineData("healthy again")]
    public async Task Capacity_AWorkerComingBack_WakesTheRequestsWaitingForASlot(string how)
    {
        await using var gateway = await TestGateway.StartAsync(workers: 2, configure: o => o.MaxNumSeqs = 1, extraToml: """

            [health]
            interval = "100ms"
            timeout = "100ms"
            unhealthy_threshold = 1
            healthy_threshold = 1
            """);
        var (busy, away) = (gateway.Workers[0], gateway.Workers[1]);
        if (how == "undrained")
        {
            await Fleet.PostJsonAsync(gateway, "/api/workers/sim-1/drain");
        }
        else
        {
            away.Options.Faults.UnhealthyHealth = true;
            await TestGateway.WaitUntilAsync(async () => (await Fleet.WorkerAsync(gateway, "sim-1")).GetProperty("health").GetString() == "unhealthy", "sim-1 is unhealthy");
        }

        busy.Options.Faults.Hang = true;
        using var hangs = new CancellationTokenSource();
        var hung = gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)), hangs.Token);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(busy.Stats.RequestsTotal == 1), "the first request hangs on sim-0");
        var queued = gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false)));
        await TestGateway.WaitUntilAsync(async () => (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models")[0].GetProperty("waiting").GetInt32() == 1, "the second request waits");

        if (how == "undrained")
        {
            await Fleet.PostJsonAsync(gateway, "/api/workers/sim-1/undrain");
        }
        else
        {
            away.Options.Faults.UnhealthyHealth = false;
        }

        using var served = await queued.WaitAsync(TimeSpan.FromSeconds(8));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(1, away.Stats.RequestsTotal);
        Assert.False(hung.IsCompleted, "sim-0's request ended first: its slot, not sim-1's return, let the waiter in");
        await hangs.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hung);
    }
}
