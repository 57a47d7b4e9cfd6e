namespace AotProxy.Routing;

// What a breaker granted one request; the request hands it back with its outcome.
internal enum BreakerPermit : byte
{
    Denied,
    Normal, // closed: an ordinary request
    Trial,  // half-open: one of the few requests that decide whether the circuit closes
}
