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
    private readonly ConcurrentDictionary<string, Counter.Child> _cut = new(StringComparer.Ordinal);
    private readonly Counter _cutoffs;
    private readonly TenantSeries _tenants;

    // The tenant label of the counters (not of the budget gauges, one per tenant with a budget in
    // the config): TenantSeries, past [telemetry] max_tenant_series "other".
    public LimitTelemetry(CollectorRegistry registry, TenantSeries tenants)
    {
        _tenants = tenants;
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _requests = factory.CreateCounter("llm_rate_limiter_requests_total", "Requests of tenants with rpm, tpm, max_in_flight or a budget that reached the limit check.", ["tenant"]);
        _budgetLeft = factory.CreateGauge("llm_rate_limiter_budget_left", "What each budget of a tenant with budgets has left for new requests (budget - spent - reserved, at least 0), by budget: tokens, monthly_tokens (tokens), usd, monthly_usd (USD). Set at scrape time.", ["tenant", "budget"]);
        _rejectedTotal = factory.CreateCounter("llm_rate_limiter_rejected_total", "Requests refused with 429 by a tenant limit, by reason: requests (rpm), tokens (tpm), in_flight (max_in_flight), budget_tokens and budget_usd (a used-up budget, or max_tokens above what is left with budget_overrun = \"reject\").", ["tenant", "reason"]);
        _cutoffs = factory.CreateCounter("llm_gateway_budget_cutoffs_total", "Streams ended mid-way at their tenant's budget (stream_budget_cutoff) with the budget_exhausted event.", ["tenant"]);
    }

    public void CountCutoff(string tenant) =>
        _tenants.Child(_cut, _cutoffs, tenant).Inc();

    public void CountCheck(string tenant) =>
        _tenants.Child(_limited, _requests, tenant).Inc();

    public void CountRefusal(string tenant, LimitRefusal reason) =>
        _rejected.GetOrAdd((tenant, reason), static (key, self) => self._rejectedTotal.WithLabels(self._tenants.Label(key.Tenant), EnumNames.Snake(key.Reason)), this).Inc();

    // One series per budget a tenant has now (only tenants with a budget, only the budgets they
    // have); series of budgets gone (a reload) are dropped. Tenants past max_tenant_series: what
    // they have left together, in tenant="other".
    public void CollectFrom(GatewayState state, TenantLimits limits) => _registry.AddBeforeCollectCallback(() =>
    {
        var live = new Dictionary<(string, string), double>();
        foreach (var tenant in state.Current.Config.Tenants)
        {
            if (tenant.Budget is null || limits.Of(tenant.Name)?.Budget is not { } budget)
            {
                continue;
            }

            var name = _tenants.Label(tenant.Name);
            foreach (var (kind, label) in BudgetLabels)
            {
                if (budget.Remaining(kind) is { } left)
                {
                    live[(name, label)] = live.GetValueOrDefault((name, label)) + (kind is BudgetKind.Usd or BudgetKind.MonthlyUsd ? left / 1e9 : left);
                }
            }
        }

        foreach (var ((name, label), left) in live)
        {
            _budgetLeft.WithLabels(name, label).Set(left);
        }

        foreach (var labels in _budgetLeft.GetAllLabelValues().ToArray())
        {
            if (!live.ContainsKey((labels[0], labels[1])))
            {
                _budgetLeft.RemoveLabelled(labels);
            }
        }
    });
}
