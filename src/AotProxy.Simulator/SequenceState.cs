namespace AotProxy.Simulator;

internal enum SequenceState
{
    Waiting,
    Running,
    Finished,
    Aborted,
}
