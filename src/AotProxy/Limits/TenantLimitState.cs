using AotProxy.Accounting;
using AotProxy.Configuration;

namespace AotProxy.Limits;

// One tenant's limit state, kept across reloads by tenant name (TenantLimits): its RPM and TPM
// limits, its budgets and the requests it has past the limit check. An unchanged limit is kept
// as it is; a changed one is rebuilt from the old one (MinuteLimit), so that a reload neither
// hands out a fresh minute nor forgets one. The in-flight count always carries over, and so do
// the budgets' spend and reservations while the tenant keeps a budget.
internal sealed class TenantLimitState(string name)
{
    private volatile MinuteLimit? _requests;
    private volatile MinuteLimit? _tokens;
    private volatile TenantBudgetState? _budget;
    private volatile int _maxInFlight;
    private int _inFlight;

    public string Name { get; } = name;

    public MinuteLimit? Requests => _requests;

    public MinuteLimit? Tokens => _tokens;

    // null without a budget.
    public TenantBudgetState? Budget => _budget;

    public int MaxInFlight => _maxInFlight;

    public int InFlight => Volatile.Read(ref _inFlight);

    // Called under TenantLimits' apply lock (and once when a request creates the state).
    // seed: the ledger's totals for a budget this creates (TenantLimits.Seed).
    public void Update(TenantModel tenant, TimeProvider time, UsageTotals? seed = null)
    {
        _requests = Resize(_requests, tenant.Rpm, time);
        _tokens = Resize(_tokens, tenant.Tpm, time);
        _budget = Rebudget(_budget, tenant.Budget, time, seed);
        _maxInFlight = tenant.MaxInFlight;
    }

    // One more request in flight, unless max_in_flight (0 = unlimited) is reached.
    public bool TryEnter()
    {
        var seen = Volatile.Read(ref _inFlight);
        while (true)
        {
            var max = _maxInFlight;
            if (max > 0 && seen >= max)
            {
                return false;
            }

            var found = Interlocked.CompareExchange(ref _inFlight, seen + 1, seen);
            if (found == seen)
            {
                return true;
            }

            seen = found;
        }
    }

    public void Exit() => Interlocked.Decrement(ref _inFlight);

    private static TenantBudgetState? Rebudget(TenantBudgetState? state, TenantBudgetModel? budget, TimeProvider time, UsageTotals? seed)
    {
        if (budget is null)
        {
            return null;
        }

        if (state is not null)
        {
            state.Update(budget);
            return state;
        }

        state = new TenantBudgetState(budget, time);
        if (seed is { } totals)
        {
            state.Seed(totals);
        }

        return state;
    }

    private static MinuteLimit? Resize(MinuteLimit? limit, long perMinute, TimeProvider time) =>
        perMinute <= 0 ? null
        : limit?.Capacity == perMinute ? limit
        : new MinuteLimit(perMinute, time, limit);
}
