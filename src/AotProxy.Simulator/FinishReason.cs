namespace AotProxy.Simulator;

internal enum FinishReason
{
    // The model emitted its end-of-sequence token.
    Stop,

    // max_tokens was reached.
    Length,
}
