namespace AotProxy.Accounting;

// One tenant's tokens since the gateway started (what /api/tenants shows; the ledger keeps history).
internal sealed class TenantUsage
{
    private long _promptTokens;
    private long _completionTokens;
    private long _cachedPromptTokens;
    private long _reasoningTokens;
    private long _requests;
    private long _estimatedRequests;

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    public long CachedPromptTokens => Interlocked.Read(ref _cachedPromptTokens);

    public long ReasoningTokens => Interlocked.Read(ref _reasoningTokens);

    public long Requests => Interlocked.Read(ref _requests);

    // Requests whose response ended without usage (cut, abandoned): counted in the tokens above
    // with the gateway's estimate.
    public long EstimatedRequests => Interlocked.Read(ref _estimatedRequests);

    public void Add(Usage usage)
    {
        Interlocked.Add(ref _promptTokens, usage.PromptTokens);
        Interlocked.Add(ref _completionTokens, usage.CompletionTokens);
        if (usage.CachedPromptTokens != 0)
        {
            Interlocked.Add(ref _cachedPromptTokens, usage.CachedPromptTokens);
        }

        if (usage.ReasoningTokens != 0)
        {
            Interlocked.Add(ref _reasoningTokens, usage.ReasoningTokens);
        }

        if (usage.Estimated)
        {
            Interlocked.Increment(ref _estimatedRequests);
        }

        Interlocked.Increment(ref _requests);
    }
}
