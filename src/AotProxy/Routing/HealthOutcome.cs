namespace AotProxy.Routing;

// How one GET /health went; only Healthy is healthy.
internal enum HealthOutcome : byte
{
    None,           // default(HealthProbeResult): no probe has run, so a zeroed result is never healthy
    Healthy,        // a 2xx within the timeout
    HttpStatus,     // any other status: vLLM answers 5xx when its engine is dead
    Timeout,        // no status line within the timeout
    ConnectFailed,  // no connection: refused, unreachable, name not resolved, TLS handshake
    ResponseFailed, // connected, then the answer broke off or was not HTTP
}
