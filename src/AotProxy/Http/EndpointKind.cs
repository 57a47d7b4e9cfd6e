namespace AotProxy.Http;

// Which proxied endpoint a request is for, derived once from its path (DataPlaneHandler). What
// each kind implies for the stages (reserves completion tokens, streams, reports usage) is in
// EndpointTraits.
internal enum EndpointKind : byte
{
    ChatCompletions, // /v1/chat/completions
    Completions,     // /v1/completions
    Embeddings,      // /v1/embeddings: generates nothing, so it reserves no completion tokens
    Responses,       // /v1/responses: OpenAI's Responses API; max_output_tokens, usage in response.completed
    Messages,        // /v1/messages: Anthropic's Messages API; max_tokens required, errors in Anthropic's shape
    Rerank,          // /v1/rerank, /rerank, /v2/rerank (vLLM's Jina/Cohere-style API)
    Score,           // /v1/score, /score
    Pooling,         // /pooling
    Classify,        // /classify
    Tokenize,        // /tokenize: no tokens used (the tokenizer only), still a request
    Detokenize,      // /detokenize: as /tokenize
    Transcriptions,  // /v1/audio/transcriptions: a multipart upload; usage in seconds, or a stream's tokens
    Translations,    // /v1/audio/translations: as transcriptions
}
