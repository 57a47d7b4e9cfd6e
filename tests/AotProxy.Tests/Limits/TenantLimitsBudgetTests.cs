using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Limits;

// The budgets inside the limit stage: which refusal wins, what a refusal gives back, the capped
// TPM reservation, reloads and seeding from the ledger.
public sealed class TenantLimitsBudgetTests
{
    private static readonly ModelPrice Price = new(1000, 500, 2000);

    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void TryAcquire_BudgetOnly_HasABudgetAndNoBuckets()
    {
        var tenant = Tenant(new TenantBudgetModel(1000, 0, 0, 0));
        var limits = Limits(tenant);

        var result = limits.TryAcquire(tenant, 100, 200, Price, rejectOverrun: false);

        Assert.True(result.IsAllowed);
        Assert.Null(result.Lease.Requests);
        Assert.Null(result.Lease.Tokens);
        Assert.Equal(300, result.Lease.Budget.Tokens);
        Assert.Equal(700, limits.Of("acme")!.Budget!.Left(BudgetKind.Tokens));
        Assert.Equal(1, limits.Of("acme")!.InFlight);

        result.Lease.Settle(admitted: true, new Usage(90, 10));

        Assert.Equal(900, limits.Of("acme")!.Budget!.Left(BudgetKind.Tokens));
        Assert.Equal(0, limits.Of("acme")!.InFlight);
    }

    [Fact]
    public void TryAcquire_BudgetUsedUp_Refuses_AndTakesNoRequestTokenOrSlot()
    {
        var tenant = Tenant(new TenantBudgetModel(0, 100, 0, 0), rpm: 5);
        var limits = Limits(tenant);

        var result = limits.TryAcquire(tenant, 100, 10, Price, rejectOverrun: false);

        Assert.Equal(LimitRefusal.BudgetTokens, result.Refusal);
        Assert.Equal(BudgetKind.MonthlyTokens, result.Budget.Kind);
        Assert.Equal(110, result.Requested);
        Assert.Equal(5, limits.Of("acme")!.Requests!.Remaining);
        Assert.Equal(0, limits.Of("acme")!.InFlight);
    }

    [Fact]
    public void TryAcquire_SpendBudgetUsedUp_IsABudgetUsdRefusal()
    {
        var tenant = Tenant(new TenantBudgetModel(0, 0, 50_000, 0));
        var limits = Limits(tenant);

        Assert.Equal(LimitRefusal.BudgetUsd, limits.TryAcquire(tenant, 100, 10, Price, rejectOverrun: false).Refusal);
    }

    [Fact]
    public void TryAcquire_RpmRefusesAfterTheBudget_GivesTheBudgetReservationBack()
    {
        var tenant = Tenant(new TenantBudgetModel(1000, 0, 0, 0), rpm: 1);
        var limits = Limits(tenant);
        var first = limits.TryAcquire(tenant, 100, 100, Price, rejectOverrun: false);
        Assert.True(first.IsAllowed);

        var second = limits.TryAcquire(tenant, 100, 100, Price, rejectOverrun: false);

        Assert.Equal(LimitRefusal.Requests, second.Refusal);
        Assert.Equal(200, limits.Of("acme")!.Budget!.ReservedTokens); // the first's alone
    }

    [Fact]
    public void TryAcquire_Capped_TpmReservesTheCappedAmount()
    {
        var tenant = Tenant(new TenantBudgetModel(0, 500, 0, 0), tpm: 10_000);
        var limits = Limits(tenant);

        var result = limits.TryAcquire(tenant, 100, 4000, Price, rejectOverrun: false);

        Assert.True(result.IsAllowed);
        Assert.True(result.Budget.Capped);
        Assert.Equal(400, result.Budget.Completion);
        Assert.Equal(500, result.Requested);
        Assert.Equal(500, result.Lease.Reserved);
        Assert.Equal(9500, limits.Of("acme")!.Tokens!.Remaining);
    }

    [Fact]
    public void TryAcquire_RejectOverrun_RefusesWithTheBudgetThatWouldCap()
    {
        var tenant = Tenant(new TenantBudgetModel(0, 500, 0, 0));
        var limits = Limits(tenant);

        var result = limits.TryAcquire(tenant, 100, 4000, Price, rejectOverrun: true);

        Assert.Equal(LimitRefusal.BudgetTokens, result.Refusal);
        Assert.True(result.Budget.Overrun);
        Assert.Equal(0, limits.Of("acme")!.Budget!.ReservedTokens);
    }

    [Fact]
    public void Apply_ReloadRaisingTheBudget_KeepsTheSpend()
    {
        var tenant = Tenant(new TenantBudgetModel(1000, 0, 0, 0));
        var limits = Limits(tenant);
        limits.TryAcquire(tenant, 100, 900, Price, false).Lease.Settle(true, new Usage(100, 900));
        var budget = limits.Of("acme")!.Budget!;
        Assert.False(limits.TryAcquire(tenant, 10, 10, Price, false).IsAllowed);

        var raised = Tenant(new TenantBudgetModel(3000, 0, 0, 0));
        limits.Apply(Snapshots.Create(tenants: [raised], revision: 2));

        Assert.Same(budget, limits.Of("acme")!.Budget);
        Assert.Equal(2000, budget.Left(BudgetKind.Tokens));
        Assert.True(limits.TryAcquire(raised, 10, 10, Price, false).IsAllowed);
    }

    [Fact]
    public void Apply_BudgetRemoved_TheTenantLeavesTheLimitStage()
    {
        var limits = Limits(Tenant(new TenantBudgetModel(1000, 0, 0, 0)));

        limits.Apply(Snapshots.Create(tenants: [Tenant(null, rpm: 5)], revision: 2));

        Assert.Null(limits.Of("acme")!.Budget);
    }

    [Fact]
    public void Seed_ExistingBudget_TakesTheLedgersTotals()
    {
        var tenant = Tenant(new TenantBudgetModel(10_000, 1000, 0, 0));
        var limits = Limits(tenant, Tenant(null, rpm: 5, name: "other"));

        limits.Seed([new UsageTotals("acme", 4000, 900, 0, 0), new UsageTotals("other", 1, 1, 1, 1), new UsageTotals("gone", 5, 5, 5, 5)]);

        var budget = limits.Of("acme")!.Budget!;
        Assert.Equal(6000, budget.Left(BudgetKind.Tokens));
        Assert.Equal(100, budget.Left(BudgetKind.MonthlyTokens));
        Assert.Null(limits.Of("other")!.Budget);
        Assert.Null(limits.Of("gone"));
    }

    [Fact]
    public void Seed_BudgetAddedByAReloadLater_StartsFromTheSeed()
    {
        var limits = Limits(Tenant(null));
        limits.Seed([new UsageTotals("acme", 4000, 900, 7_000, 3_000)]);

        limits.Apply(Snapshots.Create(tenants: [Tenant(new TenantBudgetModel(10_000, 0, 0, 10_000))], revision: 2));

        var budget = limits.Of("acme")!.Budget!;
        Assert.Equal((4000L, 7000L), (budget.SpentTokens, budget.SpentNanos));
        Assert.Equal(7000, budget.Left(BudgetKind.MonthlyUsd));
    }

    [Fact]
    public void Seed_TenantCreatedByARequest_StartsFromTheSeed()
    {
        var limits = new TenantLimits(_clock);
        limits.Seed([new UsageTotals("acme", 950, 950, 0, 0)]);
        var tenant = Tenant(new TenantBudgetModel(1000, 0, 0, 0));

        var result = limits.TryAcquire(tenant, 60, 0, Price, false);

        Assert.Equal(LimitRefusal.BudgetTokens, result.Refusal);
    }

    private TenantLimits Limits(params TenantModel[] tenants)
    {
        var limits = new TenantLimits(_clock);
        limits.Apply(Snapshots.Create(tenants: tenants));
        return limits;
    }

    private static TenantModel Tenant(TenantBudgetModel? budget, long rpm = 0, long tpm = 0, string name = "acme") =>
        new(name, "default", 1, [], ["*"], rpm, tpm, 0, Budget: budget);
}
