using System.Net;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// scheduler.adaptive_slots end to end: a simulated worker runs 4 sequences but the gateway was
// told max_concurrency = 8, so half of what the gateway sends waits in the worker's queue, the
// scrapes (every 100ms) show it, and the worker's slots shrink; idle again, they come back.
public class AdaptiveSlotsTests
{
    private const string Routing = "strategy = \"round_robin\"\nmetrics_interval = \"100ms\"";
    private const string Adaptive = "\n[scheduler]\nadaptive_slots = true\n";

    [Fact]
    public async Task QueueOnTheWorker_ShrinksItsSlots_AndIdleRestoresMaxConcurrency()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => { o.MaxNumSeqs = 4; o.SpeedFactor = 0.5; }, extraToml: Adaptive, routing: Routing);
        var larger = TestGateway.Toml(gateway.Workers, Adaptive, routing: Routing).Replace("max_concurrency = 4", "max_concurrency = 8", StringComparison.Ordinal);
        Assert.Contains("max_concurrency = 8", larger, StringComparison.Ordinal);
        await File.WriteAllTextAsync(gateway.ConfigPath, larger);
        using (var reload = await gateway.Admin.PostAsync("/api/config/reload", null))
        {
            Assert.True(reload.IsSuccessStatusCode, await reload.Content.ReadAsStringAsync());
        }

        var before = await Fleet.WorkerAsync(gateway, "sim-0");
        Assert.Equal((8, 8), (before.GetProperty("max_concurrency").GetInt32(), before.GetProperty("slots").GetInt32()));

        // 12 clients in a closed loop: more than the 8 slots, so the gateway always has some to send.
        using var stop = new CancellationTokenSource();
        var served = 0;
        async Task Client()
        {
            for (var i = 0; i < 200 && !stop.IsCancellationRequested; i++)
            {
                using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 40)));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Interlocked.Increment(ref served);
            }
        }

        var clients = Enumerable.Range(0, 12).Select(_ => Task.Run(Client)).ToArray();
        var lowest = 8;
        try
        {
            await TestGateway.WaitUntilAsync(
                async () =>
                {
                    lowest = Math.Min(lowest, (await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("slots").GetInt32());
                    return lowest < 8;
                },
                "the worker's queue shrinks its slots below max_concurrency");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.InRange(lowest, 4, 7); // adaptive_min 0.5 of 8
        Assert.True(served > 0);
        await Fleet.AssertNothingInFlightAsync(gateway);

        // Idle, nothing waiting: one slot back per scrape, up to max_concurrency and no further
        // (growth past it needs every slot in use).
        await TestGateway.WaitUntilAsync(
            async () => (await Fleet.WorkerAsync(gateway, "sim-0")).GetProperty("slots").GetInt32() == 8,
            "the idle worker's slots recover to max_concurrency");
        // Then five more scrapes, counted as the scrape records the gateway keeps (a new one per
        // scrape). Six new records: the sixth is published just before its step, so five steps
        // have surely run. A record missed between two polls only means more scrapes ran.
        var state = gateway.Host.State.Current.Workers.Workers.Single(w => w.Name == "sim-0");
        var scrapes = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var recovered = state.Scraped;
        await TestGateway.WaitUntilAsync(
            () =>
            {
                if (state.Scraped is { } scrape && !ReferenceEquals(scrape, recovered))
                {
                    scrapes.Add(scrape);
                }

                return Task.FromResult(scrapes.Count >= 6);
            },
            "six more scrapes of the idle worker");
        var after = await Fleet.WorkerAsync(gateway, "sim-0");
        Assert.Equal((8, 8), (after.GetProperty("max_concurrency").GetInt32(), after.GetProperty("slots").GetInt32()));
    }

    [Fact]
    public async Task Off_TheSameQueue_LeavesSlotsAtMaxConcurrency()
    {
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => { o.MaxNumSeqs = 4; o.SpeedFactor = 0.5; }, routing: Routing);
        var larger = TestGateway.Toml(gateway.Workers, routing: Routing).Replace("max_concurrency = 4", "max_concurrency = 8", StringComparison.Ordinal);
        await File.WriteAllTextAsync(gateway.ConfigPath, larger);
        using (var reload = await gateway.Admin.PostAsync("/api/config/reload", null))
        {
            Assert.True(reload.IsSuccessStatusCode, await reload.Content.ReadAsStringAsync());
        }

        // 8 at once: 4 run and 4 wait on the worker for the ~1 s the first four take.
        var requests = Enumerable.Range(0, 8)
            .Select(_ => gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 40))))
            .ToArray();
        var slots = new List<int>();
        var sawQueue = false;
        for (var i = 0; i < 40 && !requests.All(r => r.IsCompleted); i++)
        {
            var worker = await Fleet.WorkerAsync(gateway, "sim-0");
            slots.Add(worker.GetProperty("slots").GetInt32());
            sawQueue |= worker.GetProperty("scrape").GetProperty("waiting").ValueKind == System.Text.Json.JsonValueKind.Number
                && worker.GetProperty("scrape").GetProperty("waiting").GetDouble() > 0;
            await Task.Delay(50);
        }

        foreach (var response in await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        Assert.True(sawQueue, "the worker never reported a queue, so this test shows nothing");
        Assert.All(slots, s => Assert.Equal(8, s));
    }
}
