namespace AotProxy.Simulator;

internal enum RequestKind
{
    Chat,
    Completion,
    Embedding,
    Responses, // POST /v1/responses
    Messages,  // POST /v1/messages (Anthropic)
}
