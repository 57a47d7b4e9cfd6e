namespace AotProxy.Configuration.Validation;

// [response_cache]: the exact response cache's memory bound and time to live.
internal static class ResponseCacheRules
{
    // 1 TiB: past any memory a gateway has; a typo of units must not pass as a bound.
    private const long MaxBytes = 1L << 40;

    public static ResponseCacheModel Validate(ValidationContext context, ResponseCacheConfig cache)
    {
        context.Unknown("response_cache", cache.Unknown);
        var ttl = context.Positive("response_cache.ttl", cache.Ttl);
        if (cache.MaxBytes is < 0 or > MaxBytes)
        {
            context.Error("response_cache.max_bytes", $"must be 0 (nothing is stored) to {MaxBytes} (got {cache.MaxBytes})");
        }

        return new ResponseCacheModel(cache.Enabled, Math.Clamp(cache.MaxBytes, 0, MaxBytes), ttl, cache.ChargeHits);
    }
}
