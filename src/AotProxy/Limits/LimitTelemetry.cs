using System.Collections.Concurrent;
using AotProxy.Gateway;
using AotProxy.Routing;
using Prometheus;

namespace AotProxy.Limits;

// The limit stage's metrics: the checks and refusals of tenants with limits, counted on the
// request's path, and what each budget has left, set at scrape time.
internal sealed class LimitTelemetry
{
    // The `budget` label of llm_rate_limiter_budget_left.
    private static readonly (BudgetKind Kind, string Label)[] BudgetLabels =
        [(BudgetKind.Tokens, "tokens"), (BudgetKind.MonthlyTokens, "monthly_tokens"), (BudgetKind.Usd, "usd"), (BudgetKind.MonthlyUsd, "monthly_usd")];

    private readonly ConcurrentDictionary<string, Counter.Child> _limited = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Tenant, LimitRefusal Reason), Counter.Child> _rejected = new();
    private readonly CollectorRegistry _registry;
    private readonly Counter _requests;
    private readonly Gauge _budgetLeft;
    private readonly Counter _rejectedTotal;

    public LimitTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _requests = factory.CreateCounter("llm_rate_limiter_requests_total", "Requests of tenants with rpm, tpm, max_in_flight or a budget that reached the limit check.", ["tenant"]);
        _budgetLeft = factory.CreateGauge("llm_rate_limiter_budget_left", "What each budget of a tenant with budgets has left for new requests (budget - spent - reserved, at least 0), by budget: tokens, monthly_tokens (tokens), usd, monthly_usd (USD). Set at scrape time.", ["tenant", "budget"]);
        _rejectedTotal = factory.CreateCounter("llm_rate_limiter_rejected_total", "Requests refused with 429 by a tenant limit, by reason: requests (rpm), tokens (tpm), in_flight (max_in_flight), budget_tokens and budget_usd (a used-up budget, or max_tokens above what is left with budget_overrun = \"reject\").", ["tenant", "reason"]);
    }

    public void CountCheck(string tenant) =>
        TelemetrySeries.Child(_limited, _requests, tenant).Inc();

    public void CountRefusal(string tenant, LimitRefusal reason) =>
        _rejected.GetOrAdd((tenant, reason), static (key, counter) => counter.WithLabels(key.Tenant, EnumNames.Snake(key.Reason)), _rejectedTotal).Inc();

    // One series per budget a tenant has now (only tenants with a budget, only the budgets they
    // have); series of budgets gone (a reload) are dropped.
    public void CollectFrom(GatewayState state, TenantLimits limits) => _registry.AddBeforeCollectCallback(() =>
    {
        var live = new HashSet<(string, string)>();
        foreach (var tenant in state.Current.Config.Tenants)
        {
            if (tenant.Budget is null || limits.Of(tenant.Name)?.Budget is not { } budget)
            {
                continue;
            }

            foreach (var (kind, label) in BudgetLabels)
            {
                if (budget.Remaining(kind) is { } left)
                {
                    live.Add((tenant.Name, label));
                    _budgetLeft.WithLabels(tenant.Name, label).Set(kind is BudgetKind.Usd or BudgetKind.MonthlyUsd ? left / 1e9 : left);
                }
            }
        }

        foreach (var labels in _budgetLeft.GetAllLabelValues().ToArray())
        {
            if (!live.Contains((labels[0], labels[1])))
            {
                _budgetLeft.RemoveLabelled(labels);
            }
        }
    });
}
