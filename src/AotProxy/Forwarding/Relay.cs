using System.Buffers;
using System.IO.Pipelines;
using AotProxy.Accounting;

namespace AotProxy.Forwarding;

// The copy loop's state for one response, a struct inside the forwarder's one async method:
// no object per request. Process handles one read: what goes to the client now, and where the
// part held back for the next read begins.
internal struct Relay(RelayMode mode, bool stripUsage)
{
    private SseUsageFilter _sse = new(stripUsage);
    private UsageJsonScanner _json;
    private long _pendingWritten; // JSON modes: bytes at the buffer's start already sent on

    public readonly Usage? Usage => mode == RelayMode.Sse ? _sse.Usage
        : mode == RelayMode.JsonWithUsage && _json.Found ? _json.Usage
        : null;

    public SequencePosition Process(in ReadOnlySequence<byte> buffer, bool isFinal, PipeWriter client, out long written)
    {
        if (mode == RelayMode.Sse)
        {
            return _sse.Process(buffer, client, isFinal, out written);
        }

        written = BufferCopy.Write(client, buffer.Slice(_pendingWritten));
        var consumed = mode == RelayMode.JsonWithUsage ? _json.Feed(buffer, isFinal) : buffer.Length;
        _pendingWritten = buffer.Length - consumed;
        return buffer.GetPosition(consumed);
    }
}
