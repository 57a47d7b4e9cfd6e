using System.Collections.Concurrent;
using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Accounting;

// Settled usage per tenant (UsageRecorder), once per request that reached a worker.
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

    public UsageTelemetry(CollectorRegistry registry)
    {
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
        _tokens.GetOrAdd((tenant, true), static (key, counter) => counter.WithLabels(key.Tenant, "prompt"), _tokensTotal).Inc(usage.PromptTokens);
        _tokens.GetOrAdd((tenant, false), static (key, counter) => counter.WithLabels(key.Tenant, "completion"), _tokensTotal).Inc(usage.CompletionTokens);
        TelemetrySeries.Child(_cachedTokens, _cachedPromptTokens, tenant).Inc(usage.CachedPromptTokens);
        TelemetrySeries.Child(_reasoningTokens, _reasoningTokensTotal, tenant).Inc(usage.ReasoningTokens);
        TelemetrySeries.Child(_estimated, _estimatedUsage, tenant).Inc(usage.Estimated ? 1 : 0);
    }
}
