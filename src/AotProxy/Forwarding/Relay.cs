using System.Buffers;
using System.IO.Pipelines;
using AotProxy.Accounting;
using AotProxy.Http;

namespace AotProxy.Forwarding;

// The copy loop's state for one response, a struct inside the forwarder's one async method:
// no object per request (a JSON answer's scanner is a pooled one, JsonUsageScan, given back by
// Release). Process handles one read: what goes to the client now, and where the part held back
// for the next read begins.
internal struct Relay(RelayMode mode, bool stripUsage, ContentMeter? meter = null, EndpointKind endpoint = EndpointKind.ChatCompletions)
{
    private SseUsageFilter _sse = new(stripUsage, meter, endpoint);
    private JsonUsageScan? _json = mode == RelayMode.JsonWithUsage ? JsonUsageScan.Rent() : null;
    private long _pendingWritten; // JSON modes: bytes at the buffer's start already sent on

    // Content chunks relayed so far (SSE; 0 otherwise), each metered as it went (ContentMeter).
    public readonly long ContentChunks => _sse.ContentChunks;

    // An SSE response hit its tenant's budget (what it debited is in its ContentMeter).
    public readonly bool BudgetCut => _sse.BudgetCut;

    // An SSE content chunk waits for the next block of its tenant's fleet budgets (StreamBudget):
    // Process stopped before it; lease, add, and process the rest of the same read again.
    public readonly bool NeedsBlock => _sse.NeedsBlock;

    public readonly ValueTask<long> LeaseBlockAsync() => _sse.LeaseBlockAsync();

    public readonly void AddBlock(long granted) => _sse.AddBlock(granted);

    public readonly Usage? Usage => mode == RelayMode.Sse ? _sse.Usage
        : _json is { Scanner.Found: true } json ? json.Scanner.Usage
        : null;

    // What the response cost, once it has ended, however it ended: the usage it reported, else an
    // estimate (a stream cut before its usage chunk, or one whose upstream never sent it; a JSON
    // body cut short). Raw bodies (upstream errors) report nothing and are estimated at nothing.
    public readonly Usage? UsageOrEstimate(long promptEstimate) => Usage ?? mode switch
    {
        // A Messages stream cut before message_delta too: its prompt at the estimate that its
        // stream budget was debited against, so a cut stream costs its budget to the cap, no more.
        RelayMode.Sse => Accounting.Usage.Estimate(promptEstimate, _sse.ContentChunks),
        RelayMode.JsonWithUsage => Accounting.Usage.Estimate(promptEstimate, 0),
        _ => null,
    };

    public SequencePosition Process(in ReadOnlySequence<byte> buffer, bool isFinal, PipeWriter client, out long written)
    {
        if (mode == RelayMode.Sse)
        {
            return _sse.Process(buffer, client, isFinal, out written);
        }

        written = BufferCopy.Write(client, buffer.Slice(_pendingWritten));
        var consumed = _json is { } json ? json.Scanner.Feed(buffer, isFinal) : buffer.Length;
        _pendingWritten = buffer.Length - consumed;
        return buffer.GetPosition(consumed);
    }

    // The response has ended and its usage has been read: the JSON scanner goes back to its pool.
    public void Release()
    {
        if (_json is { } json)
        {
            _json = null;
            JsonUsageScan.Return(json);
        }
    }
}
