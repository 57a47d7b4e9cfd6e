using AotProxy.Configuration;

namespace AotProxy.Http;

// What an endpoint means for the stages, in one place: the inspector, the limit stage (what it
// reserves), forwarding (what the body gets) and accounting (what the answer reports) ask here.
internal static class EndpointTraits
{
    // Runs the model's decoder: reserves completion tokens (max_tokens, else
    // limits.default_max_tokens), may stream, and shares the worker's prefix cache (cache_salt).
    // The pooling-model endpoints (embeddings, rerank, score, pooling, classify) and the tokenizer
    // endpoints only read their input.
    public static bool Generates(EndpointKind kind) =>
        kind is not (EndpointKind.Embeddings or EndpointKind.Rerank or EndpointKind.Score or EndpointKind.Pooling
            or EndpointKind.Classify or EndpointKind.Tokenize or EndpointKind.Detokenize);

    // The tokenizer endpoints run no model: vLLM's answer has no `usage`, and the request costs
    // 0 tokens (its prompt is not reserved either), exactly, not as an estimate.
    public static bool UsesTokens(EndpointKind kind) =>
        kind is not (EndpointKind.Tokenize or EndpointKind.Detokenize);

    // Pairs a query with each document (rerank, score): their texts are the prompt.
    public static bool ScoresPairs(EndpointKind kind) =>
        kind is EndpointKind.Rerank or EndpointKind.Score;

    // A multipart/form-data audio upload (Inspection/MultipartFormInspector), not a JSON body.
    public static bool TakesAudio(EndpointKind kind) =>
        kind is EndpointKind.Transcriptions or EndpointKind.Translations;

    // What model "auto" asks of the model for the endpoint itself: a speech model (transcription)
    // for an audio upload, a decoder (chat) for the rest of what generates, a pooling model
    // (embeddings) for embeddings, rerank, score, pooling and classify; nothing for the tokenizer
    // endpoints, which every model serves.
    public static ModelCapabilities Needs(EndpointKind kind) =>
        TakesAudio(kind) ? ModelCapabilities.Transcription
        : Generates(kind) ? ModelCapabilities.Chat
        : UsesTokens(kind) ? ModelCapabilities.Embeddings
        : ModelCapabilities.None;
}
