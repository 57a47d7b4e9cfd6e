using System.Collections.Concurrent;
using AotProxy.Configuration;
using AotProxy.Gateway;
using Prometheus;

namespace AotProxy.Caching;

// The response cache's metrics: hits and misses of cacheable requests by served model, and the
// bytes the cache holds, read at scrape time (after the current [response_cache] is applied, so
// a reload that shrank max_bytes shows at once).
internal sealed class ResponseCacheTelemetry
{
    private readonly ConcurrentDictionary<string, Counter.Child> _hits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Counter.Child> _misses = new(StringComparer.Ordinal);
    private readonly CollectorRegistry _registry;
    private readonly Counter _hitsTotal;
    private readonly Counter _missesTotal;
    private readonly Gauge _bytes;

    public ResponseCacheTelemetry(CollectorRegistry registry)
    {
        _registry = registry;
        var factory = Metrics.WithCustomRegistry(registry);
        _hitsTotal = factory.CreateCounter("llm_gateway_response_cache_hits_total", "Cacheable requests answered from the exact response cache, by served model.", ["model"]);
        _missesTotal = factory.CreateCounter("llm_gateway_response_cache_misses_total", "Cacheable requests the exact response cache did not hold, by served model (sent on to a worker).", ["model"]);
        _bytes = factory.CreateGauge("llm_gateway_response_cache_bytes", "Bytes the exact response cache holds (answers and their bookkeeping), at most [response_cache] max_bytes.");
    }

    public void CountHit(string model) => TelemetrySeries.Child(_hits, _hitsTotal, model).Inc();

    public void CountMiss(string model) => TelemetrySeries.Child(_misses, _missesTotal, model).Inc();

    public void CollectFrom(ResponseCache cache, Func<ResponseCacheModel> current) => _registry.AddBeforeCollectCallback(() =>
    {
        cache.Apply(current());
        _bytes.Set(cache.Bytes);
    });
}
