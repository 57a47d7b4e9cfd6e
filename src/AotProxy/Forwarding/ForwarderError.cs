namespace AotProxy.Forwarding;

// Who failed, and where (YARP's ForwarderError idea). Health and breakers will count only the
// upstream's failures; a client that went away is never the worker's fault.
internal enum ForwarderError : byte
{
    None,
    UpstreamConnect,      // no response: refused, unreachable, connect timeout
    UpstreamTimeout,      // the upstream went silent longer than forwarding.activity_timeout
    UpstreamProtocol,     // the upstream answered with something that is not an HTTP/1.x response
    UpstreamResponseBody, // the upstream broke off mid-body (reset, truncated, bad chunking); before any byte
                          // reached the client, the caller may retry it or answer 502
    UpstreamStatus,       // the upstream answered 5xx or 429 and the caller will retry: nothing was relayed
    ClientAborted,        // the client disconnected; the upstream request was cancelled
    PacingTimeout,        // the worker's pacing (rpm/tpm) gave no turn within max_wait: nothing was sent, the client got 503
    Preempted,            // a more important class took its slot before its first byte: cancelled upstream, nothing
                          // relayed, it waits again (PreemptionTicket); no verdict on the worker
}
