using AotProxy.Accounting;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Limits;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A tenant's limits fleet-wide against a real redis-server: two replicas, each with its own
// connection and name, share one tenant's RPM, TPM, max_in_flight and budgets; a settlement
// gives back or settles exactly what the admit charged.
public sealed class SharedTenantLimitsTests : IAsyncLifetime
{
    private const int Month = 202612;

    private TwoReplicaStore _store = null!;

    public async Task InitializeAsync() => _store = await TwoReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task TwoReplicas_TogetherTakeAtMostTheRpm()
    {
        const int Rpm = 10;
        var (one, two) = Replicas();

        // 3 x the limit at once, half through each replica: the 3 replicas took 90 of 90.
        var takes = await Task.WhenAll(Enumerable.Range(0, 3 * Rpm).Select(i => (i % 2 == 0 ? one : two).TryAdmitAsync(Demand(rpm: Rpm)).AsTask()));

        Assert.Equal(Rpm, takes.Count(t => t.Taken));
        Assert.All(takes.Where(t => !t.Taken), t => Assert.Equal(LimitRefusal.Requests, t.Refusal));
        Assert.All(takes.Where(t => !t.Taken), t => Assert.InRange(t.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(61)));
        Assert.False((await two.TryAdmitAsync(Demand(rpm: Rpm))).Taken);
        Assert.True((await two.TryAdmitAsync(Demand(rpm: Rpm) with { Tenant = "other" })).Taken); // a tenant's minute is its own
    }

    [Fact]
    public async Task ARequestThatNeverWentUpstream_GivesItsPlaceBack_ForTheOtherReplica()
    {
        const int Rpm = 3;
        var (one, two) = Replicas();
        var demand = Budgeted(Demand(rpm: Rpm));
        var taken = new List<SharedTake>();
        for (var i = 0; i < Rpm; i++)
        {
            taken.Add(await one.TryAdmitAsync(demand));
        }

        Assert.All(taken, t => Assert.True(t.Taken));
        Assert.False((await two.TryAdmitAsync(demand)).Taken);

        new SharedPlace(one, demand, taken[0].Second).Settle(admitted: false, null, default);
        await _store.One.GetDatabase().PingAsync(); // same connection, in order: the settlement has run

        Assert.True((await two.TryAdmitAsync(demand)).Taken);
        Assert.False((await two.TryAdmitAsync(demand)).Taken); // exactly one place came back
    }

    [Fact]
    public async Task AGiveBack_OfASecondNoLongerCounted_ChangesNothing()
    {
        var (one, _) = Replicas();
        var demand = Demand(rpm: 1, tpm: 100, tokens: 10);
        Assert.True((await one.TryAdmitAsync(demand)).Taken);

        new SharedPlace(one, demand, 12345).Settle(admitted: false, null, default); // a bin long gone
        await one.FlushAsync(); // a demand without a budget gives back through its lease's flush
        var db = _store.One.GetDatabase();
        Assert.False(await db.HashExistsAsync("aotproxy:rpm:acme", 12345));
        Assert.False(await db.HashExistsAsync("aotproxy:tpm:acme", 12345));
        Assert.False((await one.TryAdmitAsync(demand)).Taken);
    }

    // Each replica alone would let 100 tokens through: together they reserve at most 100. Budgeted:
    // one script per request, so exactly 3 (leased blocks may refuse within the last 1/8 of the
    // free tokens: LeasedTenantLimitsTests).
    [Fact]
    public async Task TwoReplicas_TogetherReserveAtMostTheTpm()
    {
        var (one, two) = Replicas();
        var demand = Budgeted(Demand(tpm: 100, tokens: 30));

        var takes = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => (i % 2 == 0 ? one : two).TryAdmitAsync(demand).AsTask()));

        Assert.Equal(3, takes.Count(t => t.Taken)); // 90 of 100: a fourth 30 does not fit
        Assert.All(takes.Where(t => !t.Taken), t => Assert.Equal(LimitRefusal.Tokens, t.Refusal));
        Assert.All(takes.Where(t => !t.Taken), t => Assert.InRange(t.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(61)));
        Assert.True((await two.TryAdmitAsync(demand with { Tokens = 10 })).Taken); // what is left still fits
    }

    // The reservation was 60, the usage 20: the bin it was charged to holds 20, and the budget
    // has 20 spent and nothing reserved. The other replica can then take exactly the other 80.
    [Fact]
    public async Task ASettle_RefundsAnOverEstimate_Exactly()
    {
        var (one, two) = Replicas();
        var budget = new TenantBudgetModel(100, 0, 0, 0);
        var demand = Demand(tpm: 100, tokens: 60, budget: budget, budgetTokens: 60);
        var taken = await one.TryAdmitAsync(demand);
        Assert.True(taken.Taken);
        Assert.False((await two.TryAdmitAsync(demand with { Tokens = 41, BudgetTokens = 41 })).Taken);

        new SharedPlace(one, demand, taken.Second).Settle(admitted: true, new Usage(15, 5), default);
        await _store.One.GetDatabase().PingAsync();

        var db = _store.Two.GetDatabase();
        Assert.Equal(20, (long)await db.HashGetAsync("aotproxy:tpm:acme", taken.Second));
        Assert.Equal(20, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_spent"));
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:tenant:acme", "budget_reserved"));
        Assert.False(await db.HashExistsAsync("aotproxy:res:one", "t|acme|budget_reserved")); // nothing left to reap
        var rest = demand with { Tokens = 80, BudgetTokens = 80 };
        Assert.True((await two.TryAdmitAsync(rest)).Taken);
        var over = await two.TryAdmitAsync(demand with { Tokens = 1, BudgetTokens = 0, Budget = null });
        Assert.Equal(LimitRefusal.Tokens, over.Refusal);
    }

    [Fact]
    public async Task TwoReplicas_TogetherHoldMaxInFlight_AndEachRecordsItsPart()
    {
        const int Max = 3;
        var (one, two) = Replicas();
        var demand = Demand(maxInFlight: Max);

        var takes = new List<(SharedTenantLimits Store, SharedTake Take)>();
        for (var i = 0; i < 2 * Max; i++)
        {
            var store = i % 2 == 0 ? one : two;
            takes.Add((store, await store.TryAdmitAsync(demand)));
        }

        Assert.Equal(Max, takes.Count(t => t.Take.Taken));
        Assert.All(takes.Where(t => !t.Take.Taken), t => Assert.Equal(LimitRefusal.InFlight, t.Take.Refusal));
        var db = _store.One.GetDatabase();
        Assert.Equal(Max, (long)await db.HashGetAsync("aotproxy:tenant:acme", "in_flight"));
        var parts = (long)await db.HashGetAsync("aotproxy:res:one", "t|acme|in_flight") + (long)await db.HashGetAsync("aotproxy:res:two", "t|acme|in_flight");
        Assert.Equal(Max, parts);

        // One ends on replica two: its place is free for replica one, and only that one.
        var ended = takes.First(t => t.Take.Taken && t.Store == two);
        new SharedPlace(two, demand, ended.Take.Second).Settle(admitted: true, new Usage(1, 1), default);
        await two.FlushAsync();
        await two.FlushAsync(); // idle for a flush: its lease gives the spare place back
        Assert.True((await one.TryAdmitAsync(demand)).Taken);
        Assert.Equal(LimitRefusal.InFlight, (await two.TryAdmitAsync(demand)).Refusal);
    }

    // Every budget kind: 100 (tokens or nano-USD), two reservations of 40 through two replicas
    // fit, a third does not (20 left), whichever replica asks.
    [Theory]
    [InlineData(1)] // BudgetKind.Tokens
    [InlineData(2)] // MonthlyTokens
    [InlineData(3)] // Usd
    [InlineData(4)] // MonthlyUsd
    public async Task TwoReplicas_TogetherHoldEachBudget(int budgetKind)
    {
        var kind = (BudgetKind)budgetKind;
        var (one, two) = Replicas();
        var budget = new TenantBudgetModel(
            kind == BudgetKind.Tokens ? 100 : 0,
            kind == BudgetKind.MonthlyTokens ? 100 : 0,
            kind == BudgetKind.Usd ? 100 : 0,
            kind == BudgetKind.MonthlyUsd ? 100 : 0);
        var demand = Demand(budget: budget, budgetTokens: 40, budgetNanos: 40);

        var first = await one.TryAdmitAsync(demand);
        var second = await two.TryAdmitAsync(demand);
        var third = await one.TryAdmitAsync(demand);
        var fourth = await two.TryAdmitAsync(demand);

        Assert.True(first.Taken && second.Taken);
        var refusal = kind is BudgetKind.Tokens or BudgetKind.MonthlyTokens ? LimitRefusal.BudgetTokens : LimitRefusal.BudgetUsd;
        Assert.All(new[] { third, fourth }, t => Assert.Equal((SharedTakeOutcome.Refused, refusal, kind, 20L), (t.Outcome, t.Refusal, t.Budget, t.Left)));

        // Both settle to 30 used (1 nano per token): 60 spent, 40 left, and one 40 fits again.
        var price = new ModelPrice(1, 1, 1);
        new SharedPlace(one, demand, first.Second).Settle(admitted: true, new Usage(20, 10), price);
        new SharedPlace(two, demand, second.Second).Settle(admitted: true, new Usage(20, 10), price);
        await Task.WhenAll(_store.One.GetDatabase().PingAsync(), _store.Two.GetDatabase().PingAsync());
        Assert.True((await two.TryAdmitAsync(demand)).Taken);
        Assert.Equal(refusal, (await one.TryAdmitAsync(demand)).Refusal);
    }

    // A new month starts the monthly budgets over; the lifetime ones keep counting.
    [Fact]
    public async Task ANewMonth_StartsTheMonthlyBudgetOver()
    {
        var (one, _) = Replicas();
        var monthly = Demand(budget: new TenantBudgetModel(0, 100, 0, 0), budgetTokens: 80);
        var lifetime = Demand(budget: new TenantBudgetModel(100, 0, 0, 0), budgetTokens: 80) with { Tenant = "lifetime" };
        foreach (var demand in new[] { monthly, lifetime })
        {
            var taken = await one.TryAdmitAsync(demand);
            new SharedPlace(one, demand, taken.Second).Settle(admitted: true, new Usage(40, 40), default);
            Assert.False((await one.TryAdmitAsync(demand)).Taken);
        }

        Assert.True((await one.TryAdmitAsync(monthly with { Month = Month + 1 })).Taken);
        Assert.Equal(LimitRefusal.BudgetTokens, (await one.TryAdmitAsync(lifetime with { Month = Month + 1 })).Refusal);
    }

    // The scripts cross the wire once per connection, then run by their SHA-1 (EVALSHA): the
    // client keeps the hash of a script the server has run, and the admit goes by the hash it
    // computed (ClusterScript) from the start: 10 admits (the first answered NOSCRIPT, then sent as
    // text) and 9 settles by their hash, the first settle and the admit's retry as text.
    [Fact]
    public async Task TheScripts_AreSentOnce_ThenRunByTheirHash()
    {
        var (one, _) = Replicas();
        var demand = Budgeted(Demand(rpm: 100, maxInFlight: 100)); // a budget: one admit per request
        for (var i = 0; i < 10; i++)
        {
            var taken = await one.TryAdmitAsync(demand);
            new SharedPlace(one, demand, taken.Second).Settle(admitted: true, new Usage(1, 1), default);
        }

        await _store.One.GetDatabase().PingAsync();
        Assert.True(RedisAddress.TryParse(_store.Server.Url, out var address, out var error), error);
        var options = address.Options();
        options.AllowAdmin = true; // INFO
        await using var admin = await ConnectionMultiplexer.ConnectAsync(options);
        var stats = await admin.GetServer(admin.GetEndPoints()[0]).InfoRawAsync("commandstats");
        Assert.Equal(2, Calls(stats!, "eval"));
        Assert.Equal(19, Calls(stats!, "evalsha"));
    }

    // A store restarted empty has no script cached: the client sends the script again
    // (NOSCRIPT), and the admit is answered, not taken for a store that is down.
    [Fact]
    public async Task AfterAnEmptyRestart_TheScriptsRunAgain()
    {
        var (one, _) = Replicas();
        var demand = Demand(rpm: 100, maxInFlight: 100);
        Assert.True((await one.TryAdmitAsync(demand)).Taken);

        await _store.Server.StopAsync();
        await _store.Server.RestartAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        SharedTake again;
        while ((again = await one.TryAdmitAsync(demand)).Outcome == SharedTakeOutcome.StoreDown && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50); // reconnecting: the client retries every 500 ms
        }

        Assert.Equal(SharedTakeOutcome.Taken, again.Outcome);
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:tenant:acme", "in_flight")); // counted from empty
    }

    private static long Calls(string commandStats, string command)
    {
        var line = commandStats.Split('\n').FirstOrDefault(l => l.StartsWith($"cmdstat_{command}:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    // No answer is not an exception: the limit stage then decides with the replica's own limits.
    // (A stopped store is seen as disconnected before the admit is sent; a command that times out
    // on a blackholed port goes through the catch instead, which no test reaches yet.)
    [Fact]
    public async Task AStoreThatIsGone_AnswersStoreDown_AndASettleIsDropped()
    {
        var (one, _) = Replicas();
        var demand = Demand(rpm: 1, maxInFlight: 1);
        var taken = await one.TryAdmitAsync(demand);
        Assert.True(taken.Taken);

        await _store.Server.StopAsync();
        Assert.Equal(SharedTakeOutcome.StoreDown, (await one.TryAdmitAsync(demand)).Outcome);
        new SharedPlace(one, demand, taken.Second).Settle(admitted: false, null, default); // nothing to reach: no exception either
        Assert.Equal(SharedTakeOutcome.StoreDown, (await new SharedTenantLimits(() => null, () => "three").TryAdmitAsync(demand)).Outcome); // not connected yet
    }

    private static SharedDemand Demand(long rpm = 0, long tpm = 0, long tokens = 0, int maxInFlight = 0, TenantBudgetModel? budget = null, long budgetTokens = 0, long budgetNanos = 0) =>
        new("acme", rpm, tpm, tokens, maxInFlight, budget, budgetTokens, budgetNanos, Month);

    // Far above what a test spends: the demand takes the per-request scripts, not a lease.
    private static SharedDemand Budgeted(SharedDemand demand) => demand with { Budget = new TenantBudgetModel(1_000_000, 0, 0, 0), BudgetTokens = 1 };

    private (SharedTenantLimits One, SharedTenantLimits Two) Replicas() =>
        (new SharedTenantLimits(() => _store.One, () => "one"), new SharedTenantLimits(() => _store.Two, () => "two"));

}
