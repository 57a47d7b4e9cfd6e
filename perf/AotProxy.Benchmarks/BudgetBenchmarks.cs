using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// The budget check on one thread (uncontended): the reservation of a request against four
// budgets (lifetime and monthly, tokens and USD) and its settlement to the usage, alone and
// inside the whole limit stage beside rpm, tpm and max_in_flight (compare TokenBucketBenchmarks'
// CheckAndSettle). Expected: 0 B (a BudgetMonth is allocated once a month). The budgets are at
// their ceilings (1e15 tokens, 1e9 USD), so that no run drains them and every case measures an
// allowed request.
[MemoryDiagnoser]
public class BudgetBenchmarks
{
    private static readonly Usage Used = new(500, 524, CachedPromptTokens: 100);

    private TenantBudgetState _budget = null!;
    private TenantLimits _limits = null!;
    private TenantModel _budgetOnly = null!;
    private TenantModel _everything = null!;
    private ModelPrice _price;

    [GlobalSetup]
    public void Setup()
    {
        var budgets = $"budget_tokens = {TenantBudgetModel.MaxTokens}\nmonthly_budget_tokens = {TenantBudgetModel.MaxTokens}\nbudget_usd = 1e9\nmonthly_budget_usd = 1e9\n";
        var snapshot = ConfigLoader.Parse(
            $"[[tenants]]\nname = \"budget\"\n{budgets}\n"
            + $"[[tenants]]\nname = \"all\"\nrpm = {TokenBucket.MaxCapacity}\ntpm = {TokenBucket.MaxCapacity}\nmax_in_flight = 64\n{budgets}\n"
            + "[[prices]]\nmodel = \"m\"\ninput_per_million = 2.5\noutput_per_million = 10.0\ncached_input_per_million = 1.25\n",
            "<bench>",
            1,
            TimeProvider.System).Snapshot!;
        _budgetOnly = snapshot.Tenants[0];
        _everything = snapshot.Tenants[1];
        _price = snapshot.Prices.For("m");
        _budget = new TenantBudgetState(_budgetOnly.Budget!, TimeProvider.System);
        _limits = new TenantLimits(TimeProvider.System);
        _limits.Apply(snapshot);
        if (!ReserveAndSettle() || !BudgetOnlyCheckAndSettle() || !CheckAndSettle())
        {
            throw new InvalidOperationException("the budget refuses");
        }
    }

    // TenantBudgetState alone: four budgets read, two reservation adds, the settlement's adds.
    [Benchmark(Baseline = true)]
    public bool ReserveAndSettle()
    {
        var check = _budget.TryReserve(500, 1024, _price, rejectOverrun: false, out var reservation);
        reservation.Settle(admitted: true, Used);
        return !check.Capped && reservation.State is not null;
    }

    // The limit stage of a tenant with budgets only: lookup by name, in-flight count, budgets.
    [Benchmark]
    public bool BudgetOnlyCheckAndSettle()
    {
        var result = _limits.TryAcquire(_budgetOnly, 500, 1024, _price, rejectOverrun: false);
        result.Lease.Settle(admitted: true, Used);
        return result.IsAllowed;
    }

    // ... of a tenant with everything: budgets, RPM token and TPM reservation.
    [Benchmark]
    public bool CheckAndSettle()
    {
        var result = _limits.TryAcquire(_everything, 500, 1024, _price, rejectOverrun: false);
        result.Lease.Settle(admitted: true, Used);
        return result.IsAllowed;
    }
}
