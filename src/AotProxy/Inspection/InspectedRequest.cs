using AotProxy.Configuration;

namespace AotProxy.Inspection;

// What the gateway needs from a request body, from one Utf8JsonReader pass (no DOM).
internal readonly record struct InspectedRequest(
    string Model,
    bool Stream,
    bool IncludeUsage,       // the client asked for stream_options.include_usage = true
    int MaxTokens,           // max_completion_tokens, else max_tokens; 0 when absent
    UsageSplice UsageSplice, // how to turn include_usage on, when the client did not; Kind None: stream_options is malformed
    PrioritySplice PrioritySplice, // where scheduler.engine_priority adds "priority": the root's closing brace
    ulong PrefixHash,        // StableHash of the prompt's first bytes (messages, prompt or input); 0 when absent
    ulong UserHash,          // StableHash of the body's `user`; 0 when absent
    MaxTokensSplice MaxTokensSplice = default, // where a budget's cap rewrites max_tokens
    long PromptTokens = 0,   // the prompt's estimated tokens, from its text (PromptSize)
    int PromptChunks = 0,    // chained hashes of its whole 256-byte chunks written to the caller's buffer (PromptChunks)
    CacheSaltSplice CacheSaltSplice = default, // where a tenant's cache_salt replaces the client's
    ModelSplice ModelSplice = default, // where an alias's served model replaces the name
    ModelCapabilities Needs = ModelCapabilities.None, // tools (a non-empty `tools`), vision (an image part): for model "auto"
    MultipartForm Form = default, // an audio upload's fields (MultipartFormInspector); IsForm false for a JSON body
    long AudioSeconds = 0)   // an audio upload's length, estimated (AudioDuration)
{
    // The gateway needs the final usage chunk to account a stream; vLLM only sends it when asked.
    // Without a splice (stream_options the worker would refuse) the body goes as the client sent it.
    public bool NeedsUsageInjection => Stream && !IncludeUsage && UsageSplice.Kind != UsageSpliceKind.None;
}
