namespace AotProxy.Simulator;

internal enum RequestKind
{
    Chat,
    Completion,
    Embedding,
    Responses, // POST /v1/responses
    Messages,  // POST /v1/messages (Anthropic)
    Rerank,     // /v1/rerank, /rerank, /v2/rerank: query + documents
    Score,      // /v1/score, /score: text_1 + text_2
    Pooling,    // /pooling: input
    Classify,   // /classify: input
    Tokenize,   // /tokenize: prompt or messages; the tokenizer only, no engine
    Detokenize, // /detokenize: tokens; the tokenizer only, no engine
}
