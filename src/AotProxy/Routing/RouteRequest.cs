namespace AotProxy.Routing;

// What a balancer may know about the request: hashes only, computed once by the inspector
// (0 = absent). AffinityKey is consistent_hash's key: the configured header, else `user`, else
// the prompt prefix. SessionHash names the conversation (the header, else `user`; no prefix
// fallback) for p2c_kv's session affinity.
internal readonly record struct RouteRequest(ulong PrefixHash, ulong AffinityKey, ulong SessionHash = 0);
