namespace AotProxy.Routing;

// How one GET /metrics went. Ok and Partial carry load; the others say what failed and where
// (ForwarderError's idea), so that the caller can tell a sick worker (Timeout, ConnectFailed,
// ResponseFailed, HttpStatus 5xx) from a misconfigured one (OtherModel, HttpStatus 404, Invalid).
internal enum ScrapeOutcome : byte
{
    None,           // default(ScrapeResult): no scrape has run, so a zeroed result never reads as Ok
    Ok,             // running, waiting and KV usage all present
    Partial,        // some of them: a server that is not quite vLLM, or a vLLM that dropped a family
    OtherModel,     // vLLM metrics, but none of the worker's models: its served names differ from the configured ones
    Invalid,        // a 2xx body without any load field: HTML, garbage, empty
    TooLarge,       // the body passed the size limit (by its Content-Length, or by the bytes received)
    HttpStatus,     // a non-2xx answer; 404 is a server without /metrics
    Timeout,        // no complete answer within the timeout
    ConnectFailed,  // no connection: refused, unreachable, name not resolved, TLS handshake
    ResponseFailed, // connected, then the answer broke off or was not HTTP
}
