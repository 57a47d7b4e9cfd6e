namespace AotProxy.Load.Recording;

// Why a request did not count as ok. The report's "errors" keys are ErrorKinds.Names.
internal enum ErrorKind
{
    Connect,      // no TCP connection (refused, unreachable, DNS)
    Timeout,      // past [scenario] timeout
    HttpStatus,   // a non-2xx status; status_codes says which
    Protocol,     // malformed or cut-off HTTP, or a stream that ended without `data: [DONE]`
    Io,           // the connection broke while the response was read
    Dropped,      // over max_in_flight: never sent, so that the schedule never waits
    Other,
}
