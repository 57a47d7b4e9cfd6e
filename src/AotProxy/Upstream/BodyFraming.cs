namespace AotProxy.Upstream;

// How the end of a response body is known (RFC 9112 §6.3).
internal enum BodyFraming : byte
{
    None,          // 204, 304: no body
    ContentLength,
    Chunked,
    UntilClose,    // neither length nor chunked: the body ends when the worker closes
}
