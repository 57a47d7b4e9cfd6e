using System.Runtime.InteropServices;

namespace AotProxy.Forwarding;

// How one attempt ended. What its worker used is not here but in the attempt's ContentMeter
// (ProxyRequest.Meter.Usage): a stream holds this result about five times between two tokens (the
// forwarder's builder and return spill, its box's result, the stage's awaiter and local), and the
// 56 B of a Usage? were most of its 104 B (perf/RESULTS.md, issue 22, third pass). Auto layout: 32 B.
[StructLayout(LayoutKind.Auto)]
internal readonly record struct ForwardResult(
    ForwarderError Error,
    int StatusCode,          // what the client got (0: nothing was sent)
    TimeSpan? FirstByte,     // time from the upstream send to the first body byte reaching the client
    bool ResponseStarted,    // the status and headers went to the client: no retry is possible any more
    bool EventStream = false, // an SSE response: FirstByte is the first token, so tokens after it time the decode
    TimeSpan RetryAfter = default, // a push-back's (503/429) retry-after, a hint for that worker; 0: none
    bool BudgetCut = false)  // the stream was ended at its tenant's budget with the budget_exhausted event;
                             // what it debited is its ContentMeter's (ProxyRequest.Meter), settled from there
{
    // 503 (vLLM's queue is full) or 429 (a hosted API's limit): "full, try another", not a failure.
    public bool PushedBack => StatusCode is 503 or 429 && Error is ForwarderError.None or ForwarderError.UpstreamStatus;

    // The worker failed or pushed back before anything reached the client: another worker may be tried.
    public bool MayRetry => !ResponseStarted && Error is ForwarderError.UpstreamConnect or ForwarderError.UpstreamTimeout
        or ForwarderError.UpstreamProtocol or ForwarderError.UpstreamStatus or ForwarderError.UpstreamResponseBody;
}
