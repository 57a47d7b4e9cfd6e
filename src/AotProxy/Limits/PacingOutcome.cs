namespace AotProxy.Limits;

internal enum PacingOutcome : byte
{
    Granted,   // the request may go upstream now (at once or after waiting)
    TimedOut,  // no turn came within max_wait: 503
    Cancelled, // the client went away while it waited
}
