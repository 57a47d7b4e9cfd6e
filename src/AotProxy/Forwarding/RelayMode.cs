namespace AotProxy.Forwarding;

internal enum RelayMode : byte
{
    Sse,           // whole events, flushed as they arrive; usage read from the events
    JsonWithUsage, // bytes as they arrive; usage read by an incremental scanner
    Raw,           // error bodies and the like: bytes as they arrive, nothing read
}
