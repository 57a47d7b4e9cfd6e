namespace AotProxy.Accounting;

// One model's prices in whole nano-USD (1e-9 USD) per token: a [[prices]] entry's USD per
// million tokens times 1,000; and per second of audio (audio_per_second, USD x 1e9). default: free.
internal readonly record struct ModelPrice(long InputNanos, long CachedInputNanos, long OutputNanos, long AudioSecondNanos = 0)
{
    // audio_per_second's cap, USD per second of audio: as MaxPerMillion, keeps a cost within a long.
    public const double MaxPerSecond = 1_000;

    // ConfigValidator caps a price here (USD per million tokens): with at most ~2e9 tokens of
    // each kind per request, a request's cost stays within a long.
    public const double MaxPerMillion = 100_000;

    public bool IsFree => InputNanos == 0 && CachedInputNanos == 0 && OutputNanos == 0 && AudioSecondNanos == 0;

    // What a request cost, in nano-USD: the usage the ledger stores and the budgets are charged.
    // Cached prompt tokens are part of the prompt tokens (Usage) and cost the cached price.
    public long CostNanos(in Usage usage)
    {
        var cached = Math.Clamp(usage.CachedPromptTokens, 0, Math.Max(usage.PromptTokens, 0));
        return ((Math.Max(usage.PromptTokens, 0) - cached) * InputNanos)
            + (cached * CachedInputNanos)
            + (Math.Max(usage.CompletionTokens, 0) * OutputNanos)
            + (Math.Max(usage.AudioSeconds, 0) * AudioSecondNanos);
    }

    // An audio request's reservation: its prompt estimate is its seconds at tokensPerSecond, so each
    // of those tokens also carries its share of a second's price (rounded up: a reservation may
    // only overestimate).
    public ModelPrice ForAudioEstimate(int tokensPerSecond) => AudioSecondNanos == 0 ? this : this with
    {
        InputNanos = InputNanos + ((AudioSecondNanos + tokensPerSecond - 1) / tokensPerSecond),
    };

    // The most a request can cost before its usage is known: every prompt token at the full
    // input price (the cache may miss), and every completion token it may generate.
    public long WorstCaseNanos(long promptTokens, long completionTokens) =>
        (promptTokens * InputNanos) + (completionTokens * OutputNanos);
}
