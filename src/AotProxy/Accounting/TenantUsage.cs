namespace AotProxy.Accounting;

// One tenant's tokens since the gateway started (what /api/tenants shows; the ledger keeps history),
// and its tokens in the current calendar month (UTC), which the ledger seeds at startup.
internal sealed class TenantUsage
{
    private long _month; // MonthOf the month _monthTokens counts
    private long _monthTokens;
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

    public static long MonthOf(DateTimeOffset time)
    {
        var utc = time.ToUniversalTime();
        return (utc.Year * 12L) + utc.Month - 1;
    }

    // The tokens of `month` (MonthOf): 0 once a later month has begun and nothing was used in it.
    public long MonthTokens(long month) => Interlocked.Read(ref _month) == month ? Interlocked.Read(ref _monthTokens) : 0;

    // From the ledger, before any request: the month's tokens so far.
    public void Seed(long month, long monthTokens)
    {
        Interlocked.Exchange(ref _month, month);
        Interlocked.Exchange(ref _monthTokens, monthTokens);
    }

    // Requests whose response ended without usage (cut, abandoned): counted in the tokens above
    // with the gateway's estimate.
    public long EstimatedRequests => Interlocked.Read(ref _estimatedRequests);

    public void Add(Usage usage, long month)
    {
        // The first request of a new month starts its count. Two racing at the turn of the month may
        // both reset, and lose a few tokens of that first instant; the ledger has them exactly.
        var counted = Interlocked.Read(ref _month);
        if (counted != month && Interlocked.CompareExchange(ref _month, month, counted) == counted)
        {
            Interlocked.Exchange(ref _monthTokens, 0);
        }

        Interlocked.Add(ref _monthTokens, usage.TotalTokens);
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
