namespace AotProxy.Routing;

// How one try on one worker ended, as routing sees it (from the forwarder's ForwarderError and status).
internal enum AttemptOutcome : byte
{
    Succeeded,        // an answer below 500 (429 aside), relayed whole
    UpstreamFailed,   // transport error, timeout, broken response, or a 5xx (503 aside): the worker's fault
    ClientAborted,    // the client went away: no verdict on the worker
    PushedBack,       // 503 (vLLM's queue is full) or 429 (a hosted API's limit): "full, try another", no failure
}
