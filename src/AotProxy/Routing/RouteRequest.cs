namespace AotProxy.Routing;

// What a balancer may know about the request, computed once by the inspector: hashes (0 = absent),
// the prompt's chained chunk hashes (Inspection/PromptChunks; a slice of the buffer the pooled
// request owns, valid while the request runs) and its estimated tokens. AffinityKey is
// consistent_hash's key: the configured header, else `user`, else the prompt prefix. SessionHash
// names the conversation (the header, else `user`; no prefix fallback) for p2c_kv's session affinity.
internal readonly record struct RouteRequest(ulong PrefixHash, ulong AffinityKey, ReadOnlyMemory<ulong> Chunks = default, long PromptTokens = 0, ulong SessionHash = 0);
