namespace AotProxy.Routing;

// How one try on one worker ended, as routing sees it (from the forwarder's ForwarderError and status).
internal enum AttemptOutcome : byte
{
    Succeeded,        // an answer below 500, relayed whole
    UpstreamFailed,   // transport error, timeout, broken response, or a 5xx: the worker's fault
    ClientAborted,    // the client went away: no verdict on the worker
}
