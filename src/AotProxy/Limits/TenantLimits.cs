using System.Collections.Concurrent;
using AotProxy.Accounting;
using AotProxy.Configuration;

namespace AotProxy.Limits;

// The limit stage: each limited tenant's state by name, kept across reloads (as WorkerRegistry
// keeps worker states), and the check a request passes before admission. A tenant without
// limits (rpm = tpm = max_in_flight = 0, no budget) never gets here: no lookup, no counter.
internal sealed class TenantLimits(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, TenantLimitState> _tenants = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UsageTotals> _seeds = new(StringComparer.Ordinal);
    private readonly Lock _applyLock = new();

    // null for a tenant without limits.
    public TenantLimitState? Of(string tenant) => _tenants.GetValueOrDefault(tenant);

    // Every limited tenant's state now (a cluster replica re-seeds the store from them).
    public ICollection<TenantLimitState> States => _tenants.Values;

    // At startup and on every applied reload, before the snapshot is published (GatewayState):
    // same name, the state carries over with the new limits; a tenant gone or without limits any more loses its state (requests still holding
    // it settle on it).
    public void Apply(GatewaySnapshot snapshot)
    {
        lock (_applyLock)
        {
            var limited = new HashSet<string>(StringComparer.Ordinal);
            foreach (var tenant in snapshot.Tenants)
            {
                if (tenant.HasLimits)
                {
                    limited.Add(tenant.Name);
                    GetOrCreate(tenant).Update(tenant, time, SeedOf(tenant.Name));
                }
            }

            foreach (var name in _tenants.Keys)
            {
                if (!limited.Contains(name))
                {
                    _tenants.TryRemove(name, out _);
                }
            }
        }
    }

    // The ledger's usage totals, at startup (before traffic): they become the spend of the
    // budgets, now and for a tenant that gets a budget later by a reload. The spend of a tenant
    // without a budget is not counted meanwhile (no cost for tenants without limits): a budget
    // added by a reload starts from these totals.
    public void Seed(IEnumerable<UsageTotals> totals)
    {
        lock (_applyLock)
        {
            foreach (var total in totals)
            {
                _seeds[total.Tenant] = total;
                Of(total.Tenant)?.Budget?.Seed(total);
            }
        }
    }

    public LimitResult TryAcquire(TenantModel tenant, long tokens) => TryAcquire(tenant, tokens, 0, default, rejectOverrun: false);

    // In-flight first, then the budgets, then one request, then the token reservation; what a
    // refusal took is given back at once, so a refused request costs the tenant nothing.
    // promptTokens + completionTokens is what TPM and the budgets reserve (the budgets at price);
    // a budget may lower completionTokens (LimitResult.Budget: Capped, Completion).
    // streamCutoff: a stream of a tenant with stream_budget_cutoff (TenantBudgetState.TryReserve).
    public LimitResult TryAcquire(TenantModel tenant, long promptTokens, long completionTokens, ModelPrice price, bool rejectOverrun, bool streamCutoff = false)
    {
        if (!tenant.HasLimits)
        {
            return default;
        }

        // GatewayState applies a snapshot here before it publishes it, so a request on the current
        // view finds its tenant's state. One still on the view before a reload that removed its
        // tenant's limits creates a state with the limits it knew; the next Apply drops it.
        var state = GetOrCreate(tenant);
        var tokens = promptTokens + completionTokens;
        if (!state.TryEnter())
        {
            return new LimitResult(LimitRefusal.InFlight, default, state, tokens);
        }

        BudgetCheck check = default;
        BudgetReservation budget = default;
        if (state.Budget is { } budgets)
        {
            check = budgets.TryReserve(promptTokens, completionTokens, price, rejectOverrun, out budget, streamCutoff);
            if (budget.State is null)
            {
                state.Exit();
                var refusal = check.Kind is BudgetKind.Tokens or BudgetKind.MonthlyTokens ? LimitRefusal.BudgetTokens : LimitRefusal.BudgetUsd;
                return new LimitResult(refusal, default, state, tokens, check);
            }

            tokens = promptTokens + check.Completion;
        }

        var requests = state.Requests;
        var bucket = state.Tokens;
        var now = requests is null && bucket is null ? 0 : time.GetTimestamp();
        if (requests is not null && !requests.TryTake(1, now))
        {
            budget.Settle(admitted: false, null);
            state.Exit();
            return new LimitResult(LimitRefusal.Requests, default, state, tokens);
        }

        if (bucket is not null && !bucket.TryTake(tokens, now))
        {
            requests?.GiveBack(1, now);
            budget.Settle(admitted: false, null);
            state.Exit();
            return new LimitResult(LimitRefusal.Tokens, default, state, tokens);
        }

        return new LimitResult(LimitRefusal.None, new LimitLease(state, requests, bucket, bucket is null ? 0 : tokens, now, budget), state, tokens, check);
    }

    private UsageTotals? SeedOf(string tenant) => _seeds.TryGetValue(tenant, out var totals) ? totals : null;

    // Created with its limits in place, so that no request ever sees a state without them.
    private TenantLimitState GetOrCreate(TenantModel tenant) =>
        _tenants.GetOrAdd(tenant.Name, static (name, context) =>
        {
            var state = new TenantLimitState(name);
            state.Update(context.Tenant, context.Time, context.Seeds.TryGetValue(name, out var seed) ? seed : null);
            return state;
        }, (Tenant: tenant, Time: time, Seeds: _seeds));
}
