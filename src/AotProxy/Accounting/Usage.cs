namespace AotProxy.Accounting;

// Token counts as the upstream reported them (OpenAI `usage`), or, when Estimated, as the gateway
// guessed them for a response that ended without one. Cached prompt tokens are part of
// PromptTokens and reasoning tokens part of CompletionTokens (OpenAI's `*_details`), so the
// total counts each token once.
// AudioSeconds: an audio upload's length (vLLM's transcription usage, or AudioUsage's measure),
// priced apart ([[prices]] audio_per_second).
internal readonly record struct Usage(long PromptTokens, long CompletionTokens, long CachedPromptTokens = 0, long ReasoningTokens = 0, bool Estimated = false, long AudioSeconds = 0)
{
    public long TotalTokens => PromptTokens + CompletionTokens;

    // vLLM streams one token per content chunk by default, so the chunks relayed are the
    // completion tokens up to the cut; a response without chunks (JSON) estimates 0.
    public static Usage Estimate(long promptEstimate, long contentChunks) => new(promptEstimate, contentChunks, Estimated: true);

    // Anthropic's stream reports its usage in parts (message_start's input, message_delta's
    // output), each count the running total so far: the latest of each, whichever event had it.
    public static Usage Latest(Usage? earlier, Usage part) => earlier is not { } prior ? part : new(
        Math.Max(prior.PromptTokens, part.PromptTokens),
        Math.Max(prior.CompletionTokens, part.CompletionTokens),
        Math.Max(prior.CachedPromptTokens, part.CachedPromptTokens),
        Math.Max(prior.ReasoningTokens, part.ReasoningTokens));
}
