namespace AotProxy.Upstream;

// The worker sent bytes that are not HTTP/1.1 as RFC 9112 frames it. An IOException, so the
// relay reports it like any other broken upstream body.
internal sealed class UpstreamProtocolException(string message) : IOException(message);
