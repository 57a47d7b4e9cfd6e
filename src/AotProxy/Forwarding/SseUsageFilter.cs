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
internal struct SseUsageFilter(bool stripUsage, ContentMeter meter = default, EndpointKind endpoint = EndpointKind.ChatCompletions)
{
    private ContentMeter _meter = meter;

    // An unfinished event longer than this is passed on unparsed rather than held without bound.
    public const int MaxPendingEventBytes = 1024 * 1024;

    public Usage? Usage { readonly get; private set; }

    // The prompt's usage a stream reported before its answer (PromptUsage), until the rest came.
    public Usage? PromptUsage { readonly get; private set; }

    // Chunks that carried generated text: the completion estimate of a stream cut before its usage.
    public readonly long ContentChunks => _meter.Chunks;

    public readonly StreamBudget Budget => _meter.Budget;

    // A content chunk found the tenant's budget used up: the stream ends here.
    public bool BudgetCut { readonly get; private set; }

    // A content chunk waits for the next block of the fleet's budgets: Process stopped before it.
    public bool NeedsBlock { readonly get; private set; }

    public void GiveBackStreamed() => _meter.GiveBack();

    public readonly ValueTask<long> LeaseBlockAsync() => _meter.LeaseAsync();

    public void AddBlock(long granted) => _meter.AddBlock(granted);

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
                Usage = usage;
            }
            else if (kind == StreamChunkKind.PromptUsage)
            {
                PromptUsage = usage;
            }
            else if (kind == StreamChunkKind.UsagePart)
            {
                Usage = Accounting.Usage.Latest(Usage ?? PromptUsage, usage);
            }
            else if (kind == StreamChunkKind.Content)
            {
                var debit = _meter.TryTake();
                if (debit != StreamDebit.Taken)
                {
                    _meter.Flush();
                    if (debit == StreamDebit.NeedsBlock)
                    {
                        NeedsBlock = true;
                        return start;
                    }

                    BudgetCut = true;
                    return buffer.End;
                }
            }

            start = reader.Position;
            if (stripUsage && kind == StreamChunkKind.UsageOnly)
            {
                continue;
            }

            written += BufferCopy.Write(output, sseEvent);
        }

        _meter.Flush();
        if (isFinal || reader.Remaining > MaxPendingEventBytes)
        {
            written += BufferCopy.Write(output, reader.UnreadSequence);
            return buffer.End;
        }

        return reader.Position;
    }
}
