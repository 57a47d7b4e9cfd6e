namespace AotProxy.Tracing;

// Span attribute and event names: the OpenTelemetry GenAI semantic conventions' (gen_ai.*, v1.37
// and later), the HTTP ones', and ours (aotproxy.*) for what the conventions do not name.
internal static class TraceNames
{
    public const string OperationName = "gen_ai.operation.name";
    public const string ProviderName = "gen_ai.provider.name";
    public const string RequestModel = "gen_ai.request.model";
    public const string RequestMaxTokens = "gen_ai.request.max_tokens";
    public const string InputTokens = "gen_ai.usage.input_tokens";
    public const string OutputTokens = "gen_ai.usage.output_tokens";
    public const string StatusCode = "http.response.status_code";
    public const string ErrorType = "error.type";
    public const string ServerAddress = "server.address";
    public const string ServerPort = "server.port";

    // vLLM's own spans say gen_ai.system="vllm"; the conventions list no provider value for it.
    public const string Provider = "vllm";

    // The conventions' gen_ai.operation.name values.
    public const string Chat = "chat";
    public const string TextCompletion = "text_completion";
    public const string Embeddings = "embeddings";

    // vLLM's endpoints the conventions have no value for: the endpoint's own name (the conventions
    // recommend a system-specific value then).
    public const string Rerank = "rerank";
    public const string Score = "score";
    public const string Pooling = "pooling";
    public const string Classify = "classify";
    public const string Tokenize = "tokenize";
    public const string Detokenize = "detokenize";

    public const string Tenant = "aotproxy.tenant";
    public const string Class = "aotproxy.class";
    public const string Worker = "aotproxy.worker";
    public const string Attempt = "aotproxy.attempt";
    public const string QueueMs = "aotproxy.queue_ms";

    // Time to first token as the client saw it leave the gateway; the conventions name it only as
    // a metric (gen_ai.server.time_to_first_token).
    public const string TtftMs = "aotproxy.ttft_ms";
    public const string Usage = "aotproxy.usage";   // "reported" or "estimated"

    // Events, in the order the stages add them.
    public const string IdentifyEvent = "identify";
    public const string LimitEvent = "limit";
    public const string QueueStartEvent = "queue.start";
    public const string AdmittedEvent = "queue.admitted";
    public const string RouteEvent = "route";
    public const string RequestSentEvent = "upstream.request_sent";
    public const string ResponseHeadEvent = "upstream.response_head";
    public const string FirstTokenEvent = "gen_ai.first_token";
}
