namespace AotProxy.Accounting;

// One tenant's tokens since the gateway started (what /api/tenants shows; the ledger keeps history).
internal sealed class TenantUsage
{
    private long _promptTokens;
    private long _completionTokens;
    private long _requests;

    public long PromptTokens => Interlocked.Read(ref _promptTokens);

    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    public long Requests => Interlocked.Read(ref _requests);

    public void Add(Usage usage)
    {
        Interlocked.Add(ref _promptTokens, usage.PromptTokens);
        Interlocked.Add(ref _completionTokens, usage.CompletionTokens);
        Interlocked.Increment(ref _requests);
    }
}
