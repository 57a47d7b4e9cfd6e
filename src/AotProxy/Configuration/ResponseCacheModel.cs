namespace AotProxy.Configuration;

// [response_cache] validated. Off: no request is cached, whatever tenants and models opt into.
internal sealed record ResponseCacheModel(bool Enabled, long MaxBytes, TimeSpan Ttl, bool ChargeHits)
{
    public const long DefaultMaxBytes = 64L * 1024 * 1024;

    public static ResponseCacheModel Default { get; } = new(true, DefaultMaxBytes, TimeSpan.FromMinutes(10), false);

    // One answer may take at most an eighth of the cache: a few huge answers must not evict every other.
    public long MaxEntryBytes => MaxBytes / 8;
}
