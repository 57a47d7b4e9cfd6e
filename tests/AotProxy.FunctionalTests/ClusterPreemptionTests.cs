using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using StackExchange.Redis;
using static AotProxy.FunctionalTests.Support.ClusterFleet;

namespace AotProxy.FunctionalTests;

// Issue 20, preemption before the first byte with [cluster], through two replicas of the real
// binary (the AOT one in CI) on a real redis-server, in front of one worker whose 2 slots are
// shared fleet-wide and whose first byte takes 3 s (prefill). Replica B runs a request, A a free
// one: the worker is full fleet-wide although A's own book has a free slot, and B's next request
// waits for a slot of it. An enterprise request on A preempts A's free one, takes its slot with
// the fleet's grant on it (a release would have paid it to B's waiter), and is served while B's
// next request still waits; the free one is requeued and completes after it, whole, and
// its tenant's fleet counter is charged once: exactly the weighted usage it was served.
// Across replicas (branch xpre20): A holds both slots with free requests, enterprise arrives on B,
// which holds none; each enterprise request's want preempts one of A's (its slot goes back to the
// store, kept for that want, not for A's requeued free request). With main's binary A never
// preempts (the wait for A's first preemption fails).
public sealed class ClusterPreemptionTests : IAsyncLifetime
{
    private const string VipKey = PreemptionClasses.VipKey;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private ClusterFleet _fleet = null!;

    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-preempt", Model = TestGateway.Model }, maxConcurrency: 2);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task EnterpriseOnReplicaA_PreemptsAsFreeRequest_WhileTheWorkerIsFullFleetWide_AndTheFreeOneIsChargedOnce()
    {
        var (a, b) = await StartTwoAsync();

        var worker = _fleet.Worker;
        worker.Options.Faults.FirstByteDelay = TimeSpan.FromSeconds(3);
        using var onA = new HttpClient { BaseAddress = a.DataUri, Timeout = Bound };
        using var onB = new HttpClient { BaseAddress = b.DataUri, Timeout = Bound };

        // B's first, then A's: A's grant answer says the worker is full (A's view is fresh, its own
        // book has room). B's next request, granted on B's older view, is refused by the store and
        // waits there with a "want": A owes B a slot, which a release on A would pay.
        var held = ReadAllAsync(onB, TestGateway.Key);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 1), "B's request reached the worker");
        var free = ReadAllAsync(onA, TestGateway.Key); // tenant acme, class default: preemptible
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 2), "A's free request reached the worker: it is full fleet-wide");
        var next = ReadAllAsync(onB, TestGateway.Key); // waits on B for one of the worker's slots
        await TestGateway.WaitUntilAsync(async () => await WaitingAsync(b) + await InUseAsync(b) == 2, "B's next request waits (in B's queue, or for the worker's slot)");
        Assert.Equal(1, await InUseAsync(a)); // A's book has a free slot; the worker has none

        var enterprise = ReadAllAsync(onA, VipKey);

        var first = await Task.WhenAny(free, held, next, enterprise).WaitAsync(Bound);
        Assert.NotSame(free, first);
        Assert.NotSame(next, first);
        var served = await Task.WhenAny(enterprise, next).WaitAsync(Bound);
        Assert.Same(enterprise, served); // the preempted request's slot went to it, not to B's waiter
        AssertWhole(await enterprise);
        AssertWhole(await free.WaitAsync(Bound)); // requeued, not failed
        AssertWhole(await held.WaitAsync(Bound));
        AssertWhole(await next.WaitAsync(Bound));
        Assert.Equal(5, worker.Stats.RequestsTotal); // free, B's, enterprise, B's next, free again
        Assert.Equal(1.0, await PreemptionsAsync(a));

        // Charged once fleet-wide: acme's counter (micro-tokens per weight, input_weight 1,
        // output_weight 2) is exactly the usage of its completed attempts on both replicas. (acme
        // sends on B too, so it is backlogged there when A requeues its request: not lifted then,
        // as a tenant that becomes backlogged fleet-wide is, VTC, which would add the difference.)
        await AssertChargedOnceAsync(a, b, requests: 4);
        await AssertNothingHeldAsync(a, b);
    }

    [Fact]
    public async Task EnterpriseOnReplicaB_PreemptsFreeRequestsOnReplicaA_OncePerRequest_AndTheyCompleteWholeAfterIt()
    {
        var (a, b) = await StartTwoAsync();

        var worker = _fleet.Worker;
        worker.Options.Faults.FirstByteDelay = TimeSpan.FromSeconds(3);
        using var onA = new HttpClient { BaseAddress = a.DataUri, Timeout = Bound };
        using var onB = new HttpClient { BaseAddress = b.DataUri, Timeout = Bound };
        var finished = new ConcurrentQueue<string>();

        // A fills the worker with free requests (tenant acme, class default: preemptible), in prefill.
        var free = new[] { Finished(ReadAllAsync(onA, TestGateway.Key), "free-1", finished), Finished(ReadAllAsync(onA, TestGateway.Key), "free-2", finished) };
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 2), "A's free requests reached the worker: it is full fleet-wide");

        // B holds no slot of it. Its first enterprise request is refused by the store and waits
        // for the worker's slot fleet-wide; its second finds B's view full and goes on to wait
        // there too (B has nothing to preempt). Each refusal's want preempts one of A's.
        var enterprise = new[] { Finished(ReadAllAsync(onB, VipKey), "enterprise-1", finished) };
        await TestGateway.WaitUntilAsync(async () => await PreemptionsAsync(a) == 1, "the first enterprise request preempted a free one on A");
        enterprise = [.. enterprise, Finished(ReadAllAsync(onB, VipKey), "enterprise-2", finished)];

        Assert.All(await Task.WhenAll(free.Concat(enterprise)).WaitAsync(Bound), AssertWhole); // the free ones requeued, not failed
        var order = finished.ToArray();
        Assert.True(order.Take(2).All(n => n.StartsWith("enterprise", StringComparison.Ordinal)), $"finished in the order {string.Join(", ", order)}");
        Assert.Equal(6, worker.Stats.RequestsTotal); // 2 free, 2 enterprise, the 2 free again
        Assert.Equal(2, await PreemptionsAsync(a)); // one per enterprise request, on the victims' replica
        Assert.Equal(0, await PreemptionsAsync(b));

        await AssertChargedOnceAsync(a, b, requests: 4);
        await AssertNothingHeldAsync(a, b);
        await using var redis = await ConnectAsync();
        var name = worker.Options.Name;
        Assert.Equal(0, await redis.GetDatabase().SortedSetLengthAsync($"aotproxy:pwant:{name}")); // no want holds a slot back
        foreach (var replica in new[] { "replica-a", "replica-b" })
        {
            var part = await redis.GetDatabase().HashGetAsync($"aotproxy:res:{replica}", $"w|{name}|running");
            Assert.True(part.IsNull || (long)part == 0, $"{replica} still holds {part} of the worker's slots");
        }
    }

    // acme's fleet counter (micro-tokens per weight, input_weight 1, output_weight 2) is exactly
    // the usage of its completed attempts on both replicas.
    // requests: how many the test sent to the two; each is accounted and counted after its last
    // byte reached the client, so the usage is read once all are counted.
    private async Task AssertChargedOnceAsync(GatewayProcess a, GatewayProcess b, int requests)
    {
        await TestGateway.WaitUntilAsync(
            async () => Fleet.Sum(await MetricsAsync(a), "llm_gateway_requests_total") + Fleet.Sum(await MetricsAsync(b), "llm_gateway_requests_total") >= requests,
            $"the {requests} requests counted on A and B");
        var onAUsage = await TenantUsageAsync(a, "acme");
        var onBUsage = await TenantUsageAsync(b, "acme");
        await using var redis = await ConnectAsync();
        var expected = (onAUsage.Prompt + onBUsage.Prompt + (2 * (onAUsage.Completion + onBUsage.Completion))) * 1_000_000;
        var counter = 0L;
        try
        {
            await TestGateway.WaitUntilAsync(
                async () => (counter = (long)await redis.GetDatabase().HashGetAsync($"aotproxy:vtc:{TestGateway.Model}", "acme")) == expected,
                $"acme's fleet counter is its usage's cost, {expected}");
        }
        catch (Xunit.Sdk.XunitException)
        {
            Assert.Fail($"acme's fleet counter {counter}, its usage's cost {expected}");
        }
    }

    // Nothing is left held: not on either replica, not in the store.
    private async Task AssertNothingHeldAsync(GatewayProcess a, GatewayProcess b)
    {
        foreach (var replica in new[] { a, b })
        {
            await TestGateway.WaitUntilAsync(async () => await InUseAsync(replica) == 0, "no admission slot is left held");
        }

        await using var redis = await ConnectAsync();
        await TestGateway.WaitUntilAsync(
            async () => (long)await redis.GetDatabase().HashGetAsync($"aotproxy:worker:{_fleet.Worker.Options.Name}", "running") == 0,
            "the worker's fleet-wide slots all came back");
    }

    private Task<ConnectionMultiplexer> ConnectAsync() =>
        ConnectionMultiplexer.ConnectAsync(_fleet.Redis.Url.Replace("redis://", string.Empty, StringComparison.Ordinal));

    // The body, once it is read whole, with its name in the order the bodies finished.
    // Replicas a and b, each with the preemption classes, each listing both.
    private async Task<(GatewayProcess A, GatewayProcess B)> StartTwoAsync()
    {
        var replicas = await _fleet.StartMembersAsync(["replica-a", "replica-b"], PreemptionClasses.Toml);
        return (replicas[0], replicas[1]);
    }

    private static async Task<string> Finished(Task<string> body, string name, ConcurrentQueue<string> finished)
    {
        var text = await body;
        finished.Enqueue(name);
        return text;
    }

    private static async Task<double> PreemptionsAsync(GatewayProcess replica) =>
        MetricsText.Value(await MetricsAsync(replica), "llm_gateway_preemptions_total", "class=\"default\"");

    private static async Task<string> ReadAllAsync(HttpClient http, string key)
    {
        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4), key: key));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return body;
    }

    private static void AssertWhole(string body)
    {
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        Assert.Contains("\"finish_reason\":\"", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"error\"", body, StringComparison.Ordinal);
    }

    private static async Task<(long Prompt, long Completion)> TenantUsageAsync(GatewayProcess replica, string tenant)
    {
        var metrics = await MetricsAsync(replica);
        return ((long)MetricsText.Value(metrics, "llm_gateway_tokens_total", $"tenant=\"{tenant}\"", "kind=\"prompt\""),
            (long)MetricsText.Value(metrics, "llm_gateway_tokens_total", $"tenant=\"{tenant}\"", "kind=\"completion\""));
    }

    private static async Task<JsonElement> ModelAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues"));
        return queues.RootElement.GetProperty("models").EnumerateArray().FirstOrDefault().Clone();
    }

    private static async Task<int> InUseAsync(GatewayProcess replica) =>
        await ModelAsync(replica) is { ValueKind: JsonValueKind.Object } model ? model.GetProperty("in_use").GetInt32() : 0;

    private static async Task<int> WaitingAsync(GatewayProcess replica) =>
        await ModelAsync(replica) is { ValueKind: JsonValueKind.Object } model ? model.GetProperty("waiting").GetInt32() : 0;
}
