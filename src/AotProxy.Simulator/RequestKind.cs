namespace AotProxy.Simulator;

internal enum RequestKind
{
    Chat,
    Completion,
    Embedding,
}
