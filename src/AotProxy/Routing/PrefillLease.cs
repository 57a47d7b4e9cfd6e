using AotProxy.Configuration;

namespace AotProxy.Routing;

// One attempt's share of its worker's token load: its predicted uncached prompt tokens count in
// the worker's PrefillBacklog from the send to the first byte, then the request counts in Decoding
// until the end, whatever the ending (an answer, an upstream failure, a client abort, a retry
// elsewhere). The forwarding stage starts and ends it around each attempt; the forwarder marks the
// first byte. One per pooled ProxyRequest, reused attempt after attempt: no object per request.
internal sealed class PrefillLease
{
    private const long MinSampleTokens = 4 * Inspection.PromptChunks.TokensPerChunk;

    // A TTFT spent on the network or behind a stalled client must not make a worker look 100x
    // slower or faster than any GPU is.
    private const double MinTokensPerSecond = 1_000;
    private const double MaxTokensPerSecond = 1_000_000;

    private WorkerState? _worker;
    private long _uncached;
    private long _promptTokens;
    private long _ahead;
    private double _learningRate;
    private bool _prefilling;

    // The prompt goes to `worker`: recorded in its cache model, and what should miss there added to
    // its backlog. A JSON answer's first byte comes only after its last token, so it counts as
    // decoding from the start: in the backlog it would stay for the whole answer.
    public void Start(WorkerState worker, in RouteRequest request, bool stream, RoutingModel routing)
    {
        End();
        var hit = worker.RecordPrompt(request, routing.PrefixTtl);
        var uncached = Math.Max(0, request.PromptTokens - hit);
        worker.MeanHitTokens.Add(hit, routing.LearningRate);
        worker.MeanPromptTokens.Add(request.PromptTokens, routing.LearningRate);
        _worker = worker;
        _learningRate = routing.LearningRate;
        _uncached = stream ? uncached : 0;
        _promptTokens = request.PromptTokens;
        worker.AddPromptInFlight(_promptTokens);
        _ahead = worker.AddPrefill(_uncached, hit);
        _prefilling = true;
        if (!stream)
        {
            OnFirstByte(null);
        }
    }

    // The first byte of the answer reached the client: prefill is over. A stream's TTFT is a sample
    // of the worker's prefill rate: the backlog the request found plus its own uncached tokens, in
    // that time (a prompt that was mostly cached says little, and gives none).
    public void OnFirstByte(TimeSpan? ttft)
    {
        if (_worker is not { } worker || !_prefilling)
        {
            return;
        }

        _prefilling = false;
        worker.RemovePrefill(_uncached);
        worker.AddDecoding();
        var tokens = _ahead + _uncached;
        if (ttft is { } elapsed && tokens >= MinSampleTokens && elapsed > TimeSpan.Zero)
        {
            var rate = Math.Clamp(tokens / elapsed.TotalSeconds, MinTokensPerSecond, MaxTokensPerSecond);
            worker.PrefillTime.Add(1 / rate, _learningRate);
        }
    }

    // The attempt is over: whatever it still holds goes back. Idempotent.
    public void End()
    {
        if (_worker is not { } worker)
        {
            return;
        }

        if (_prefilling)
        {
            worker.RemovePrefill(_uncached);
        }
        else
        {
            worker.RemoveDecoding();
        }

        worker.AddPromptInFlight(-_promptTokens);
        _worker = null;
        _prefilling = false;
    }
}
