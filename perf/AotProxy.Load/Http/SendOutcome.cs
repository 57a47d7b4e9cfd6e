using AotProxy.Load.Recording;

namespace AotProxy.Load.Http;

// What one request came to. Times are Stopwatch ticks from its intended send time (TtftTicks
// -1: no content arrived); Error is null for a success. SendTicks (when the send actually began)
// and HeadTicks (when the response head arrived; -1: none) bracket the moment the gateway decided
// on the request, which perf/limits_report.py needs to count a tenant's admissions per minute
// without false alarms from client-side delays. BodyBytes: the request body's size, from which
// the gateway estimates the prompt tokens it reserves.
internal readonly record struct SendOutcome(
    int Status,
    ErrorKind? Error,
    long TtftTicks,
    long EndTicks,
    long PromptTokens,
    long CompletionTokens,
    long SendTicks = 0,
    long HeadTicks = -1,
    int BodyBytes = 0);
