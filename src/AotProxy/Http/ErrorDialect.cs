namespace AotProxy.Http;

// The shape of the gateway's own errors, chosen from the endpoint (OpenAiError.DialectOf): an
// Anthropic SDK raises its typed errors only from Anthropic's body, an OpenAI SDK from OpenAI's.
internal enum ErrorDialect : byte
{
    OpenAi,    // {"error":{"message","type","param","code"}}
    Anthropic, // {"type":"error","error":{"type","message"}}, 529 for overload (/v1/messages)
}
