using System.Buffers;
using AotProxy.Accounting;
using AotProxy.Http;
using AotProxy.Limits;

namespace AotProxy.Forwarding;

// The SSE half of the relay: passes whole events on, reads usage from them (each API's own way:
// the endpoint), meters the content chunks (ContentMeter: budget debit and fair-share charge),
// and drops the usage-only chunk when the gateway (not the client) asked for it. A content chunk
// the tenant's budget has no room for is not sent, and nothing after it (BudgetCut); one that needs
// the next fleet block stops the read before it (NeedsBlock) until the block is added.
internal struct SseUsageFilter(bool stripUsage, ContentMeter? meter = null, EndpointKind endpoint = EndpointKind.ChatCompletions)
{
    // An unfinished event longer than this is passed on unparsed rather than held without bound.
    public const int MaxPendingEventBytes = 1024 * 1024;

    // What the stream reported so far; with _promptOnly, only the prompt's usage before its answer
    // (PromptUsage), which counts once the rest came (UsagePart). One field for both: the filter
    // is held by every stream for its whole life (perf/RESULTS.md, issue 22, second pass).
    private Usage? _usage;
    private bool _promptOnly;

    public readonly Usage? Usage => _promptOnly ? null : _usage;

    // Chunks that carried generated text and went to the client (each metered first, with a meter):
    // the completion estimate of a stream cut before its usage.
    public long ContentChunks { readonly get; private set; }

    // A content chunk found the tenant's budget used up: the stream ends here.
    public bool BudgetCut { readonly get; private set; }

    // A content chunk waits for the next block of the fleet's budgets: Process stopped before it.
    public bool NeedsBlock { readonly get; private set; }

    // NeedsBlock comes only from a meter.
    public readonly ValueTask<long> LeaseBlockAsync() => meter!.LeaseAsync();

    public readonly void AddBlock(long granted) => meter!.AddBlock(granted);

    // Writes every complete event of `buffer` and returns where the unfinished rest begins
    // (the caller keeps it for the next read). At the end of the stream the rest goes out as is.
    public SequencePosition Process(ReadOnlySequence<byte> buffer, IBufferWriter<byte> output, bool isFinal, out long written)
    {
        written = 0;
        NeedsBlock = false;
        var reader = new SequenceReader<byte>(buffer);
        var start = reader.Position;
        while (SseEventScanner.TryReadEvent(ref reader, out var sseEvent))
        {
            var kind = StreamChunkReader.Read(sseEvent, out var usage, endpoint);
            if (kind is StreamChunkKind.UsageOnly or StreamChunkKind.WithUsage)
            {
                (_usage, _promptOnly) = (usage, false);
            }
            else if (kind == StreamChunkKind.PromptUsage)
            {
                if (_usage is null || _promptOnly)
                {
                    (_usage, _promptOnly) = (usage, true);
                }
            }
            else if (kind == StreamChunkKind.UsagePart)
            {
                (_usage, _promptOnly) = (Accounting.Usage.Latest(_usage, usage), false);
            }
            else if (kind == StreamChunkKind.Content)
            {
                var debit = meter?.TryTake() ?? StreamDebit.Taken;
                if (debit != StreamDebit.Taken)
                {
                    meter!.Flush(ContentChunks);
                    if (debit == StreamDebit.NeedsBlock)
                    {
                        NeedsBlock = true;
                        return start;
                    }

                    BudgetCut = true;
                    return buffer.End;
                }

                ContentChunks++;
            }

            start = reader.Position;
            if (stripUsage && kind == StreamChunkKind.UsageOnly)
            {
                continue;
            }

            written += BufferCopy.Write(output, sseEvent);
        }

        meter?.Flush(ContentChunks);
        if (isFinal || reader.Remaining > MaxPendingEventBytes)
        {
            written += BufferCopy.Write(output, reader.UnreadSequence);
            return buffer.End;
        }

        return reader.Position;
    }
}
