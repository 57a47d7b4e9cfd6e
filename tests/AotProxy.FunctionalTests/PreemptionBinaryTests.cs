using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Simulator;

namespace AotProxy.FunctionalTests;

// Preemption before the first byte through the real binary: one slot, a worker whose first byte
// takes 3 s (prefill). A free-tier stream that has not started is preempted by an enterprise one,
// which is served first, and the free one still completes after it, whole; a free stream that has
// started is never preempted; llm_gateway_preemptions_total and /api/queues count each.
public sealed class PreemptionBinaryTests
{
    private const string VipKey = PreemptionClasses.VipKey;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AFreeRequestInPrefill_IsPreemptedByEnterprise_AndCompletesAfterIt_AStartedStreamNever()
    {
        await using var gateway = await StartAsync();
        var worker = gateway.Workers[0];

        // The free stream reaches the worker and waits there for its first byte.
        var free = ReadAllAsync(gateway, TestGateway.Key);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 1), "the free request reached the worker");
        var enterprise = ReadAllAsync(gateway, VipKey);

        var served = await Task.WhenAny(free, enterprise).WaitAsync(Bound);
        Assert.Same(enterprise, served); // the enterprise stream ended first, though it came second
        AssertWhole(await enterprise);
        AssertWhole(await free.WaitAsync(Bound)); // requeued, not failed
        Assert.Equal(3, worker.Stats.RequestsTotal); // free, enterprise, free again
        Assert.Equal(1.0, await PreemptionsAsync(gateway));
        await Fleet.MetricsAfterAsync(gateway.Admin, 2); // accounted and counted after the last byte
        var usage = await TenantTokensAsync(gateway, "acme");
        Assert.True(usage.Prompt > 0, "the free request is accounted");

        // A free stream that has started (its first event reached the client) is never preempted.
        worker.Options.Faults.FirstByteDelay = TimeSpan.Zero;
        worker.Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(20); // ~4 s of stream
        using var started = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 200), key: TestGateway.Key), HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await started.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: {", await reader.ReadLineAsync().WaitAsync(Bound), StringComparison.Ordinal);
        var second = ReadAllAsync(gateway, VipKey);
        await TestGateway.WaitUntilAsync(async () => await WaitingAsync(gateway) == 1, "the enterprise request waits");

        AssertWhole("data: {" + await reader.ReadToEndAsync().WaitAsync(Bound));
        AssertWhole(await second.WaitAsync(Bound));
        Assert.Equal(1.0, await PreemptionsAsync(gateway)); // still the one preemption
        await Fleet.MetricsAfterAsync(gateway.Admin, 4);
        Assert.Equal(2, (int)(await TenantTokensAsync(gateway, "acme")).Requests); // each free request recorded once
        await TestGateway.WaitUntilAsync(async () => (await QueuesModelAsync(gateway)).GetProperty("in_use").GetInt32() == 0, "no slot is left held");
    }

    // A stream that asked for queue updates (x-gateway-queue-updates: true) and was admitted at
    // once has heard none; preempted, it waits again, and hears its position again until it is
    // re-admitted: the 200 and the SSE head go out with the first comment, the worker's events follow.
    [Fact]
    public async Task APreemptedStreamThatAskedForQueueUpdates_HearsItsPositionAgainWhileRequeued()
    {
        await using var gateway = await StartAsync();
        var worker = gateway.Workers[0];
        var request = TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4), key: TestGateway.Key);
        request.Headers.Add("x-gateway-queue-updates", "true");
        var free = gateway.Data.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 1), "the free request reached the worker, admitted at once");
        Assert.False(free.IsCompleted); // no comment yet: nothing has been sent to it

        var enterprise = ReadAllAsync(gateway, VipKey);

        using var response = await free.WaitAsync(Bound);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var firstLine = await reader.ReadLineAsync().WaitAsync(Bound);
        Assert.Matches("^: queued position=1 eta_ms=[0-9]+$", firstLine);
        Assert.Equal(1.0, await PreemptionsAsync(gateway)); // the comment came from its requeue
        var rest = await reader.ReadToEndAsync().WaitAsync(Bound);
        var events = rest[rest.IndexOf("data: ", StringComparison.Ordinal)..];
        AssertWhole(events);
        Assert.DoesNotContain(": queued", events, StringComparison.Ordinal); // none once re-admitted
        AssertWhole(await enterprise.WaitAsync(Bound));
        Assert.Equal(3, worker.Stats.RequestsTotal);
    }

    // The bucket policy, three buckets of one slot each: enterprise owns 0, the default class
    // (acme's, preemptible) 1, a third class 2. acme's first stream holds its own bucket, its second
    // borrowed the idle bucket 2. An enterprise stream (bucket 0 full) preempts the borrowed slot,
    // which it may borrow too, not the one of acme's own bucket: acme's first stream ends first,
    // the enterprise one before acme's requeued one, all whole.
    [Fact]
    public async Task BucketPolicy_EnterprisePreemptsTheSlotAFreeRequestBorrowed_NotItsOwnBucketsSlot()
    {
        await using var gateway = await BinaryGateway.StartAsync(
            1,
            extraToml: $"""

                [scheduler]
                policy = "bucket"
                bucket_count = 3
                bucket_shares = [1, 1, 1]

                [[classes]]
                name = "enterprise"
                priority = 0
                buckets = [0, 0]

                [[classes]]
                name = "default"
                priority = 1
                buckets = [1, 1]
                preemptible = true

                [[classes]]
                name = "batch"
                priority = 2
                buckets = [2, 2]

                [[tenants]]
                name = "vip"
                class = "enterprise"
                api_key_sha256 = ["{ApiKeyIndex.HashKey(VipKey)}"]
                """,
            configure: o =>
            {
                o.MaxNumSeqs = 3;
                o.Faults.FirstByteDelay = TimeSpan.FromSeconds(3);
            });
        var worker = gateway.Workers[0];
        var firstEnterprise = ReadAllAsync(gateway, VipKey);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 1), "enterprise holds bucket 0");
        var own = ReadAllAsync(gateway, TestGateway.Key);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 2), "acme holds its bucket 1");
        var borrowed = ReadAllAsync(gateway, TestGateway.Key);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(worker.Stats.RequestsTotal == 3), "acme borrowed bucket 2");

        var enterprise = ReadAllAsync(gateway, VipKey);

        Assert.Same(own, await Task.WhenAny(own, borrowed).WaitAsync(Bound)); // the borrowed one was requeued
        Assert.Same(enterprise, await Task.WhenAny(enterprise, borrowed).WaitAsync(Bound));
        foreach (var body in await Task.WhenAll(firstEnterprise, own, borrowed, enterprise).WaitAsync(Bound))
        {
            AssertWhole(body);
        }

        Assert.Equal(5, worker.Stats.RequestsTotal); // the borrowed one twice
        Assert.Equal(1.0, await PreemptionsAsync(gateway));
        await TestGateway.WaitUntilAsync(async () => (await QueuesModelAsync(gateway)).GetProperty("in_use").GetInt32() == 0, "no slot is left held");
    }

    // One slot; a worker whose first byte takes 3 s; the default class (acme's) preemptible. With
    // engine_priority every request's body is rewritten for the worker (usage injected, priority
    // added): a preempted request is sent again with that body, not rewritten twice.
    private static Task<BinaryGateway> StartAsync() => BinaryGateway.StartAsync(
        1,
        extraToml: $"""

            [scheduler]
            engine_priority = true
            {PreemptionClasses.Toml}
            """,
        configure: o =>
        {
            o.MaxNumSeqs = 1;
            o.SchedulingPolicy = SchedulingPolicy.Priority;
            o.Faults.FirstByteDelay = TimeSpan.FromSeconds(3);
        });

    private static async Task<string> ReadAllAsync(BinaryGateway gateway, string key)
    {
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4), key: key));
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

    private static async Task<double> PreemptionsAsync(BinaryGateway gateway)
    {
        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        var counted = MetricsText.Value(metrics, "llm_gateway_preemptions_total", "class=\"default\"");
        var model = await QueuesModelAsync(gateway);
        var listed = model.GetProperty("classes").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "default").GetProperty("preemptions").GetInt64();
        Assert.Equal(counted, listed);
        return counted;
    }

    private static async Task<(long Prompt, long Requests)> TenantTokensAsync(BinaryGateway gateway, string tenant)
    {
        var metrics = await gateway.Admin.GetStringAsync("/metrics");
        var prompt = MetricsText.Value(metrics, "llm_gateway_tokens_total", $"tenant=\"{tenant}\"", "kind=\"prompt\"");
        var requests = MetricsText.Value(metrics, "llm_gateway_requests_total", "class=\"default\"", "status=\"200\"");
        return ((long)prompt, (long)requests);
    }

    private static async Task<JsonElement> QueuesModelAsync(BinaryGateway gateway)
    {
        using var queues = JsonDocument.Parse(await gateway.Admin.GetStringAsync("/api/queues"));
        return queues.RootElement.GetProperty("models")[0].Clone();
    }

    private static async Task<int> WaitingAsync(BinaryGateway gateway) => (await QueuesModelAsync(gateway)).GetProperty("waiting").GetInt32();
}
