using AotProxy.Load.Recording;

namespace AotProxy.Load.Http;

// What one request came to. Times are Stopwatch ticks from its intended send time (TtftTicks
// -1: no content arrived); Error is null for a success.
internal readonly record struct SendOutcome(
    int Status,
    ErrorKind? Error,
    long TtftTicks,
    long EndTicks,
    long PromptTokens,
    long CompletionTokens);
