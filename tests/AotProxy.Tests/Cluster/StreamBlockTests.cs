using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Configuration;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A stream's completion tokens leased in blocks from its tenant's fleet-wide budgets
// (SharedTenantLimits.LeaseStreamBlockAsync, stream_budget_cutoff), against a real redis-server:
// blocks never hold more than is left, shrink as it runs out, are settled exactly with the
// stream's usage, and a dead replica's blocks are reaped once.
public sealed class StreamBlockTests : IAsyncLifetime
{
    private const int Month = 202612;
    private const long OutputNanos = 1000;

    private TwoReplicaStore _store = null!;

    public async Task InitializeAsync() => _store = await TwoReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private IDatabase Db => _store.One.GetDatabase();

    // Two replicas lease at once until nothing is left: together exactly the budget, every block
    // min(64, left / (4 x 2 members)) and at least 1 of what was left when it was taken.
    [Fact]
    public async Task Blocks_FromTwoReplicas_TogetherReserveExactlyTheBudget_NeverMoreThanWasLeft()
    {
        const long Budget = 1000;
        var (one, two) = Replicas(members: 2);
        var demand = Demand(new TenantBudgetModel(Budget, 0, 0, 0));
        var leased = new List<long>();
        var rounds = 0;
        while (rounds++ < 200) // bounded: ~60 blocks at most
        {
            var pair = await Task.WhenAll(one.LeaseStreamBlockAsync(demand, OutputNanos).AsTask(), two.LeaseStreamBlockAsync(demand, OutputNanos).AsTask());
            leased.AddRange(pair.Where(b => b > 0));
            if (pair.All(b => b == 0))
            {
                break;
            }
        }

        Assert.Equal(Budget, leased.Sum());
        Assert.All(leased, b => Assert.InRange(b, 1, SharedTenantLimits.MaxStreamBlock));
        Assert.Equal(SharedTenantLimits.MaxStreamBlock, leased.Max()); // 1000 / 8 = 125, capped at 64
        Assert.Equal(Budget, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.Equal(Budget, (long)await Db.HashGetAsync("aotproxy:res:one", "t|acme|budget_reserved") + (long)await Db.HashGetAsync("aotproxy:res:two", "t|acme|budget_reserved"));
        Assert.Equal(0, await one.LeaseStreamBlockAsync(demand, OutputNanos));
    }

    // The adaptive rule, one replica at a time: 100 left of 2 members' budget -> 12, then 88 -> 11,
    // ... down to blocks of 1 for the last 8 tokens, never past what is left; a USD budget counts its
    // nanos left in tokens at the output price, and reserves the block's nanos.
    [Fact]
    public async Task Blocks_ShrinkAsTheBudgetRunsOut_AndAUsdBudgetCountsInTokensAtTheOutputPrice()
    {
        var (one, _) = Replicas(members: 2);
        var demand = Demand(new TenantBudgetModel(100, 0, 0, 0));
        var blocks = new List<long>();
        for (var i = 0; i < 120 && await one.LeaseStreamBlockAsync(demand, OutputNanos) is var b && b > 0; i++)
        {
            blocks.Add(b);
        }

        var expected = new List<long>();
        for (var left = 100L; left > 0;)
        {
            var block = Math.Min(left, Math.Max(1, Math.Min(64, left / 8)));
            expected.Add(block);
            left -= block;
        }

        Assert.Equal(expected, blocks);

        var usd = Demand(new TenantBudgetModel(0, 0, 10 * OutputNanos + 999, 0)) with { Tenant = "usd" };
        var tokens = 0L;
        for (var i = 0; i < 20 && await one.LeaseStreamBlockAsync(usd, OutputNanos) is var b && b > 0; i++)
        {
            tokens += b;
        }

        Assert.Equal(10, tokens); // 10,999 nanos at 1,000 a token: 10 whole tokens
        Assert.Equal(10 * OutputNanos, (long)await Db.HashGetAsync("aotproxy:tenant:usd", "usd_reserved_nanos"));
        Assert.Equal(10, (long)await Db.HashGetAsync("aotproxy:tenant:usd", "budget_reserved")); // its tokens too, as the admit reserves
    }

    // A stream admitted with its prompt (10) leases blocks, relays 17 chunks and is cut: its
    // settlement releases the prompt and every block and charges 10 + 17, once; nothing stays held,
    // and the other replica can take exactly the rest.
    [Fact]
    public async Task Settlement_ReleasesTheBlocks_AndChargesTheRelayedUsageExactlyOnce()
    {
        const long Budget = 100;
        var (one, two) = Replicas(members: 1);
        var demand = Demand(new TenantBudgetModel(Budget, 0, 0, 0)) with { BudgetTokens = 10 };
        var taken = await one.TryAdmitAsync(demand);
        Assert.True(taken.Taken);
        var leased = 0L;
        while (leased < 17)
        {
            leased += await one.LeaseStreamBlockAsync(demand, OutputNanos);
        }

        Assert.Equal(10 + leased, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));

        new SharedPlace(one, demand, taken.Second).WithLeased(leased, leased * OutputNanos).Settle(admitted: true, new Usage(10, 17), default);
        await Db.PingAsync(); // same connection, in order: the settlement has run

        Assert.Equal(27, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_spent"));
        Assert.Equal(0, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.False(await Db.HashExistsAsync("aotproxy:res:one", "t|acme|budget_reserved"));
        var rest = 0L;
        for (var i = 0; i < 200 && await two.LeaseStreamBlockAsync(demand, OutputNanos) is var b && b > 0; i++)
        {
            rest += b;
        }

        Assert.Equal(Budget - 27, rest);
    }

    // Replica one dies holding blocks: the reaper subtracts its part once; its late settlement
    // (a stall, not a death) subtracts nothing more, so replica two's blocks stay counted.
    [Fact]
    public async Task ADeadReplicasBlocks_AreReapedOnce()
    {
        var (one, two) = Replicas(members: 2);
        var demand = Demand(new TenantBudgetModel(1000, 0, 0, 0));
        var mine = await one.LeaseStreamBlockAsync(demand, OutputNanos);
        var theirs = await two.LeaseStreamBlockAsync(demand, OutputNanos);
        Assert.True(mine > 0 && theirs > 0);
        await Db.SetAddAsync("aotproxy:members", "one"); // listed, with no record: dead

        Assert.Equal(2, await ReplicaReaper.ReapAsync(Db, "one")); // its parts: budget_reserved, usd_reserved_nanos
        Assert.Equal(theirs, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));

        new SharedPlace(one, demand, 1).Blocks(mine, mine * OutputNanos).Settle(admitted: false, null, default);
        await Db.PingAsync();
        Assert.Equal(theirs, (long)await Db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.Equal(0, await ReplicaReaper.ReapAsync(Db, "one"));
    }

    [Fact]
    public async Task NoStore_AnswersStoreDown()
    {
        var demand = Demand(new TenantBudgetModel(1000, 0, 0, 0));
        Assert.Equal(SharedTenantLimits.StoreDownBlock, await new SharedTenantLimits(() => null, () => "three").LeaseStreamBlockAsync(demand, OutputNanos));
        await _store.Server.StopAsync();
        Assert.Equal(SharedTenantLimits.StoreDownBlock, await new SharedTenantLimits(() => _store.One, () => "one").LeaseStreamBlockAsync(demand, OutputNanos));
    }

    private static SharedDemand Demand(TenantBudgetModel budget) => new("acme", 0, 0, 0, 0, budget, 0, 0, Month);

    private (SharedTenantLimits One, SharedTenantLimits Two) Replicas(int members) =>
        (new SharedTenantLimits(() => _store.One, () => "one", members: () => members), new SharedTenantLimits(() => _store.Two, () => "two", members: () => members));
}
