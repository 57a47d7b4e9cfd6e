namespace AotProxy.Tests.Support;

// An input that made a fuzz target throw an undocumented exception; the message carries the input.
internal sealed class FuzzFailure(string message, Exception inner) : Exception(message, inner);
