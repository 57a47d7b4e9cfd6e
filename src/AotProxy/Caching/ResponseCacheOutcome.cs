namespace AotProxy.Caching;

// What the response cache did for a request (ProxyRequest.Cache): the x-gateway-cache header and
// the ledger's cache_hit column.
internal enum ResponseCacheOutcome : byte
{
    None, // not cacheable: no opt-in, not deterministic, or an endpoint the cache does not serve
    Miss, // cacheable and not held: sent on, its answer recorded
    Hit,  // answered from the cache
}
