namespace AotProxy.Simulator;

internal enum RequestOutcome
{
    Completed,

    // The client disconnected (or the write side failed) before the response was complete.
    ClientGone,

    // SimulatorFaults.ResetAfterTokens: the simulator cuts the connection on purpose.
    Reset,

    // The worker is shutting down and the engine dropped the sequence.
    EngineStopped,
}
