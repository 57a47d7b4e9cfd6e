using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Simulator;
using StackExchange.Redis;
using static AotProxy.FunctionalTests.Support.ClusterFleet;

namespace AotProxy.FunctionalTests;

// Issue 20, preemption across replicas, through two replicas of the real binary (the AOT one in
// CI) on a real redis-server, in front of one worker whose 2 slots are shared fleet-wide and whose
// first byte takes 3 s (prefill). Replica A holds both slots with free (preemptible) requests;
// enterprise arrives on replica B, which holds none. Each enterprise request's want preempts one
// of A's free requests (its slot goes back to the store, which keeps it for that want, not for
// A's requeued free request), so both enterprise requests are served before any free one; each
// preempted free request is requeued on A and completes whole; one preemption per enterprise
// request; the free tenant's fleet counter is exactly its usage's cost; nothing is left held.
// With main's binary (no preemption across replicas) the enterprise requests wait for the free
// ones to finish, and the order assertion fails.
public sealed class ClusterFleetPreemptionTests : IAsyncLifetime
{
    private const string VipKey = "sk-test-fleet-vip";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static readonly string Classes = $"""

        [[classes]]
        name = "default"
        priority = 2
        preemptible = true

        [[classes]]
        name = "enterprise"
        priority = 0

        [[tenants]]
        name = "vip"
        class = "enterprise"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(VipKey)}"]
        """;

    private ClusterFleet _fleet = null!;

    public async Task InitializeAsync() =>
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-fleet-preempt", Model = TestGateway.Model }, maxConcurrency: 2);

    public async Task DisposeAsync() => await _fleet.DisposeAsync();

    [Fact]
    public async Task EnterpriseOnReplicaB_PreemptsFreeRequestsOnReplicaA_OncePerRequest_AndTheyCompleteWholeAfterIt()
    {
        var a = await _fleet.StartReplicaAsync("replica-a", Classes);
        var b = await _fleet.StartReplicaAsync("replica-b", Classes);
        foreach (var replica in _fleet.Replicas)
        {
            await WaitForMembersAsync(replica, ["replica-a", "replica-b"]);
        }

        var worker = _fleet.Worker;
        worker.Options.Faults.FirstByteDelay = TimeSpan.FromSeconds(3);
        using var onA = new HttpClient { BaseAddress = a.DataUri, Timeout = Bound };
        using var onB = new HttpClient { BaseAddress = b.DataUri, Timeout = Bound };
        var finished = new ConcurrentQueue<string>();

        // A fills the worker with free requests (tenant acme, class default: preemptible), in prefill.
        var free = new[] { Send(onA, TestGateway.Key, "free-1", finished), Send(onA, TestGateway.Key, "free-2", finished) };
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 2), "A's free requests reached the worker: it is full fleet-wide");

        // B holds no slot of it. Its first enterprise request is refused by the store and waits
        // for the worker's slot fleet-wide; its second finds B's view full and goes on to wait
        // there too (B has nothing to preempt). Each refusal's want preempts one of A's.
        var enterprise = new[] { Send(onB, VipKey, "enterprise-1", finished) };
        await TestGateway.WaitUntilAsync(async () => await PreemptionsAsync(a) == 1, "the first enterprise request preempted a free one on A");
        enterprise = [.. enterprise, Send(onB, VipKey, "enterprise-2", finished)];

        var bodies = await Task.WhenAll(free.Concat(enterprise)).WaitAsync(Bound);
        Assert.All(bodies, AssertWhole); // the free ones requeued, not failed
        var order = finished.ToArray();
        Assert.True(order.Take(2).All(name => name.StartsWith("enterprise", StringComparison.Ordinal)), $"finished in the order {string.Join(", ", order)}");
        Assert.Equal(6, worker.Stats.RequestsTotal); // 2 free, 2 enterprise, the 2 free again
        Assert.Equal(2, await PreemptionsAsync(a)); // one per enterprise request, on the victims' replica
        Assert.Equal(0, await PreemptionsAsync(b));

        // Charged once fleet-wide: acme's counter (micro-tokens per weight, input_weight 1,
        // output_weight 2) is exactly the usage of its completed attempts.
        var (prompt, completion) = await TenantUsageAsync(a, "acme");
        await using var redis = await ConnectionMultiplexer.ConnectAsync(_fleet.Redis.Url.Replace("redis://", string.Empty, StringComparison.Ordinal));
        var db = redis.GetDatabase();
        var expected = (prompt + (2 * completion)) * 1_000_000;
        var counter = 0L;
        try
        {
            await TestGateway.WaitUntilAsync(
                async () => (counter = (long)await db.HashGetAsync($"aotproxy:vtc:{TestGateway.Model}", "acme")) == expected,
                $"acme's fleet counter is its usage's cost, {expected}");
        }
        catch (Xunit.Sdk.XunitException)
        {
            Assert.Fail($"acme's fleet counter {counter}, its usage's cost {expected}");
        }

        // Nothing is left held: no admission slot on either replica, no worker slot in the store,
        // no want that would hold a slot back.
        foreach (var replica in new[] { a, b })
        {
            await TestGateway.WaitUntilAsync(async () => await InUseAsync(replica) == 0, "no admission slot is left held");
        }

        var name = worker.Options.Name;
        await TestGateway.WaitUntilAsync(async () => (long)await db.HashGetAsync($"aotproxy:worker:{name}", "running") == 0, "the worker's fleet-wide slots all came back");
        Assert.Equal(0, await db.SortedSetLengthAsync($"aotproxy:pwant:{name}"));
        foreach (var replica in new[] { "replica-a", "replica-b" })
        {
            var part = await db.HashGetAsync($"aotproxy:res:{replica}", $"w|{name}|running");
            Assert.True(part.IsNull || (long)part == 0, $"{replica} still holds {part} of the worker's slots");
        }
    }

    private static async Task<string> Send(HttpClient http, string key, string name, ConcurrentQueue<string> finished)
    {
        using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4), key: key));
        var body = await response.Content.ReadAsStringAsync();
        finished.Enqueue(name);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return body;
    }

    private static void AssertWhole(string body)
    {
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        Assert.Contains("\"finish_reason\":\"", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"error\"", body, StringComparison.Ordinal);
    }

    private static async Task<double> PreemptionsAsync(GatewayProcess replica) =>
        MetricsText.Value(await MetricsAsync(replica), "llm_gateway_preemptions_total", "class=\"default\"");

    private static async Task<(long Prompt, long Completion)> TenantUsageAsync(GatewayProcess replica, string tenant)
    {
        var metrics = await MetricsAsync(replica);
        return ((long)MetricsText.Value(metrics, "llm_gateway_tokens_total", $"tenant=\"{tenant}\"", "kind=\"prompt\""),
            (long)MetricsText.Value(metrics, "llm_gateway_tokens_total", $"tenant=\"{tenant}\"", "kind=\"completion\""));
    }

    private static async Task<int> InUseAsync(GatewayProcess replica)
    {
        using var admin = new HttpClient { BaseAddress = replica.AdminUri, Timeout = TimeSpan.FromSeconds(10) };
        using var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues"));
        return queues.RootElement.GetProperty("models").EnumerateArray().FirstOrDefault() is { ValueKind: JsonValueKind.Object } model ? model.GetProperty("in_use").GetInt32() : 0;
    }
}
