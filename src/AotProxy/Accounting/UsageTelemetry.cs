using System.Collections.Concurrent;
using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Accounting;

// Settled usage per tenant (UsageRecorder), once per request that reached a worker. The tenant
// label is the tenant's own name or "other" past [telemetry] max_tenant_series (TenantSeries),
// decided when the tenant's child is first made; the child is kept under the tenant's name.
internal sealed class UsageTelemetry
{
    private readonly ConcurrentDictionary<(string Tenant, bool Prompt), Counter.Child> _tokens = new();
    private readonly ConcurrentDictionary<string, Counter.Child> _cachedTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _reasoningTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _estimated = new(StringComparer.Ordinal);
    private readonly Counter _tokensTotal;
    private readonly Counter _cachedPromptTokens;
    private readonly Counter _reasoningTokensTotal;
    private readonly Counter _estimatedUsage;
    private readonly TenantSeries _tenants;

    public UsageTelemetry(CollectorRegistry registry, TenantSeries tenants)
    {
        _tenants = tenants;
        var factory = Metrics.WithCustomRegistry(registry);
        _tokensTotal = factory.CreateCounter("llm_gateway_tokens_total", "Tokens used, from the upstream's usage (or the gateway's estimate, see llm_gateway_estimated_usage_total).", ["tenant", "kind"]);
        // Not more `kind`s of llm_gateway_tokens_total: SPEC.md fixes kind = prompt | completion,
        // and cached tokens are part of the prompt (reasoning part of the completion), so a sum
        // over kind would count them twice.
        _cachedPromptTokens = factory.CreateCounter("llm_gateway_cached_prompt_tokens_total", "Prompt tokens the upstream served from its prefix cache (usage.prompt_tokens_details.cached_tokens); part of kind=\"prompt\".", ["tenant"]);
        _reasoningTokensTotal = factory.CreateCounter("llm_gateway_reasoning_tokens_total", "Completion tokens spent on reasoning (usage.completion_tokens_details.reasoning_tokens); part of kind=\"completion\".", ["tenant"]);
        _estimatedUsage = factory.CreateCounter("llm_gateway_estimated_usage_total", "Requests accounted with estimated usage: the response ended (cut, client gone, timeout) without reporting it.", ["tenant"]);
    }

    public void CountUsage(string tenant, Usage usage)
    {
        _tokens.GetOrAdd((tenant, true), static (key, self) => self._tokensTotal.WithLabels(self._tenants.Label(key.Tenant), "prompt"), this).Inc(usage.PromptTokens);
        _tokens.GetOrAdd((tenant, false), static (key, self) => self._tokensTotal.WithLabels(self._tenants.Label(key.Tenant), "completion"), this).Inc(usage.CompletionTokens);
        _tenants.Child(_cachedTokens, _cachedPromptTokens, tenant).Inc(usage.CachedPromptTokens);
        _tenants.Child(_reasoningTokens, _reasoningTokensTotal, tenant).Inc(usage.ReasoningTokens);
        _tenants.Child(_estimated, _estimatedUsage, tenant).Inc(usage.Estimated ? 1 : 0);
    }
}
