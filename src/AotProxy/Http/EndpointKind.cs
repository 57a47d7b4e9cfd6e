namespace AotProxy.Http;

// Which proxied OpenAI endpoint a request is for, derived once from its path (DataPlaneHandler).
internal enum EndpointKind : byte
{
    ChatCompletions, // /v1/chat/completions
    Completions,     // /v1/completions
    Embeddings,      // /v1/embeddings: generates nothing, so it reserves no completion tokens
}
