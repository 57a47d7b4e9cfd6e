namespace AotProxy.Configuration;

// RejectOverrun: budget_overrun = "reject" (default "cap").
internal sealed record LimitsModel(long DefaultMaxTokens, bool RejectOverrun = false)
{
    // The ceiling of rpm, tpm and default_max_tokens: a billion per minute is far past any real
    // API's limit, and it keeps the token bucket's arithmetic within a long (Limits/TokenBucket).
    public const long MaxPerMinute = 1_000_000_000;

    public static LimitsModel Default { get; } = new(1024);
}
