using AotProxy.Accounting;
using AotProxy.Admission;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Admission;

// A grant charges the prompt estimate; the usage settles each request to exactly
// input_weight x prompt + output_weight x completion (divided by the weight), refunds included,
// except for what a lift on the tenant's return already forgave (VTC banks no idle credit).
public sealed class FairShareSettlementTests
{
    [Theory]
    [InlineData(100, 30, 5)]   // the estimate was high: the difference is refunded
    [InlineData(10, 40, 5)]    // low: the rest is charged
    [InlineData(50, 50, 0)]
    [InlineData(100, 0, 0)]
    public async Task Release_StraightOn_SettlesTenantAndClassToExactlyTheWeightedTokens(long estimate, long prompt, long completion)
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class(weight: 5);
        var tenant = Tenant("a", cls, weight: 2);

        var admitted = await test.Admit(tenant, cls, promptTokens: estimate);
        Assert.Equal(AdmissionDecision.Admitted, admitted.Decision);
        admitted.Lease.Release(new Usage(prompt, completion));

        var cost = Cost(test, prompt, completion);
        Assert.Equal(cost / 2, Account(test.Model.Tenants, "a").Counter, 9);
        Assert.Equal(cost / 5, Account(test.Model.Classes, cls.Name).Counter, 9);
    }

    [Fact]
    public async Task Release_AfterAQueueWait_SettlesToExactlyTheWeightedTokens()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class(weight: 3);
        var holder = await test.Admit(Tenant("h", cls), cls, promptTokens: 0);
        var queued = test.Admit(Tenant("b", cls, weight: 4), cls, promptTokens: 100);
        Assert.False(queued.IsCompleted);

        holder.Lease.Release(new Usage(0, 0));
        var granted = await Settle(queued);
        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        granted.Lease.Release(new Usage(30, 5));

        var cost = Cost(test, 30, 5);
        Assert.Equal(cost / 4, Account(test.Model.Tenants, "b").Counter, 9);
        Assert.Equal(cost / 3, Account(test.Model.Classes, cls.Name).Counter, 9);
    }

    // Tenant a's first request was charged a high estimate, then a went idle (nothing waiting)
    // while b was served, and came back: the lift raised a to b's counter, which forgave the
    // over-estimate along with the idle time. Refunding it now would put a below the floor it
    // was lifted to: credit for idle time, the hole the lift closes.
    [Fact]
    public async Task Refund_OfARequestChargedBeforeTheTenantsLift_BanksNoCredit()
    {
        var test = new AdmissionHarness(capacity: 2);
        var cls = Class();
        var a = Tenant("a", cls);
        var b = Tenant("b", cls);
        var early = await test.Admit(a, cls, promptTokens: 1000);
        var current = await test.Admit(b, cls, promptTokens: 100);
        var waiting = test.Admit(b, cls, promptTokens: 100);

        // b alone in the queue: each release hands the slot to b's next request.
        for (var i = 0; i < 20; i++)
        {
            current.Lease.Release(new Usage(100, 0));
            current = await Settle(waiting);
            waiting = test.Admit(b, cls, promptTokens: 100);
        }

        var bCounter = Account(test.Model.Tenants, "b").Counter;
        Assert.True(bCounter > 1000, $"b's counter {bCounter} passed a's");
        _ = test.Admit(a, cls, promptTokens: 100); // a is backlogged again: lifted to b
        var floor = Account(test.Model.Tenants, "a").Counter;
        Assert.Equal(bCounter, floor);

        early.Lease.Release(new Usage(10, 0)); // 990 over-estimated, before the lift

        var after = Account(test.Model.Tenants, "a").Counter;
        Assert.True(after >= floor, $"a's counter {after} fell below the floor {floor} it was lifted to");
    }

    // The two shapes on one slot: short prompts whose estimate is ~1.8x their real size,
    // long ones estimated about right. Settled exactly, their weighted tokens come out equal.
    [Fact]
    public async Task TwoBackloggedTenants_WithDifferentShapes_GetEqualWeightedTokens()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class();
        var shapes = new Dictionary<string, (long Estimate, Usage Usage)>
        {
            ["short"] = (95, new Usage(52, 16)),
            ["long"] = (1540, new Usage(1500, 128)),
        };
        var served = shapes.Keys.ToDictionary(name => name, _ => 0.0);
        Task<AdmissionResult> Admit(string name) => test.Admit(Tenant(name, cls), cls, promptTokens: shapes[name].Estimate);

        using var end = new CancellationTokenSource();
        var holder = "short";
        var current = await Settle(Admit(holder));
        var waiting = shapes.Keys.SelectMany(name => new[] { (Pending: Admit(name), Name: name), (Pending: Admit(name), Name: name) }).ToList();
        for (var n = 0; n < 2000; n++)
        {
            var usage = shapes[holder].Usage;
            served[holder] += Cost(test, usage.PromptTokens, usage.CompletionTokens);
            current.Lease.Release(usage);
            var done = await Task.WhenAny(waiting.Select(w => w.Pending)).WaitAsync(TimeSpan.FromSeconds(10));
            var index = waiting.FindIndex(w => w.Pending == done);
            holder = waiting[index].Name;
            current = await done;
            waiting[index] = (Admit(holder), holder);
        }

        current.Lease.Release(null);
        var ratio = served["short"] / served["long"];
        Assert.InRange(ratio, 0.95, 1.05);
        foreach (var (pending, _) in waiting)
        {
            (await Settle(pending)).Lease.Release(null);
        }
    }

    // Charge as tokens stream: the prompt estimate at the grant, then output_weight / weight per
    // content chunk relayed, on the tenant and on its class, one step per chunk.
    [Fact]
    public async Task StreamedChunks_MoveTenantAndClassCountersStepByStep()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class(weight: 5);
        var admitted = await test.Admit(Tenant("a", cls, weight: 2), cls, promptTokens: 40);
        var streamed = new StreamedCharge();
        admitted.Lease.StartStream(streamed);

        for (var chunk = 0; chunk <= 6; chunk++)
        {
            var cost = Cost(test, 40, chunk);
            Assert.Equal(cost / 2, Account(test.Model.Tenants, "a").Counter, 9);
            Assert.Equal(cost / 5, Account(test.Model.Classes, cls.Name).Counter, 9);
            Assert.Equal(chunk, streamed.Chunks);
            streamed.Charge(1);
        }
    }

    // The settlement charges the usage's cost less the grant's charge and the chunks already
    // charged: exact whether the chunks were fewer than the completion tokens (several tokens to
    // a chunk), as many, or more (a refund), and the prompt estimate high or low.
    [Theory]
    [InlineData(100, 30, 12, 5)]
    [InlineData(10, 40, 5, 5)]
    [InlineData(50, 50, 3, 9)]
    [InlineData(50, 20, 0, 4)]
    public async Task Release_AfterStreamedChunks_SettlesToExactlyTheWeightedTokens(long estimate, long prompt, long completion, long chunks)
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class(weight: 3);
        var admitted = await test.Admit(Tenant("a", cls, weight: 4), cls, promptTokens: estimate);
        var streamed = new StreamedCharge();
        admitted.Lease.StartStream(streamed);
        streamed.Charge(chunks);

        admitted.Lease.Release(new Usage(prompt, completion), streamed.Chunks);

        var cost = Cost(test, prompt, completion);
        Assert.Equal(cost / 4, Account(test.Model.Tenants, "a").Counter, 9);
        Assert.Equal(cost / 3, Account(test.Model.Classes, cls.Name).Counter, 9);
    }

    // A client that leaves mid-stream is charged what was relayed: the forwarder estimates its
    // usage as the prompt estimate and the chunks relayed, which the chunks already charged match.
    [Fact]
    public async Task Release_OfAStreamTheClientAborted_ChargesTheChunksRelayed()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class(weight: 2);
        var admitted = await test.Admit(Tenant("a", cls, weight: 1), cls, promptTokens: 60);
        var streamed = new StreamedCharge();
        admitted.Lease.StartStream(streamed);
        streamed.Charge(7);

        admitted.Lease.Release(Usage.Estimate(60, 7), streamed.Chunks);

        var cost = Cost(test, 60, 7);
        Assert.Equal(cost, Account(test.Model.Tenants, "a").Counter, 9);
        Assert.Equal(cost / 2, Account(test.Model.Classes, cls.Name).Counter, 9);
    }

    private static double Cost(AdmissionHarness test, long prompt, long completion) =>
        (test.Scheduler.InputWeight * prompt) + (test.Scheduler.OutputWeight * completion);

    private static FairShareAccount Account(IEnumerable<FairShareAccount> accounts, string name) =>
        accounts.Single(account => account.Name == name);
}
