namespace AotProxy.Accounting;

// Token counts as the upstream reported them (OpenAI `usage`).
internal readonly record struct Usage(long PromptTokens, long CompletionTokens)
{
    public long TotalTokens => PromptTokens + CompletionTokens;
}
