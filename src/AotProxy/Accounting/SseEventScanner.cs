using System.Buffers;

namespace AotProxy.Accounting;

// Splits an SSE byte stream into events. An event ends at a blank line ("\n\n" or "\r\n\r\n");
// bytes of an unfinished event stay in the buffer until more arrive, so a chunk boundary can
// fall anywhere, even inside "\r\n".
internal static class SseEventScanner
{
    // On true, `sseEvent` is one whole event including its terminating blank line, and the
    // reader has moved past it. On false, the reader is where it was.
    public static bool TryReadEvent(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> sseEvent)
    {
        var start = reader.Position;
        var startConsumed = reader.Consumed;
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (line.IsEmpty || (line.Length == 1 && line.FirstSpan[0] == (byte)'\r'))
            {
                sseEvent = reader.Sequence.Slice(start, reader.Position);
                return true;
            }
        }

        reader.Rewind(reader.Consumed - startConsumed);
        sseEvent = default;
        return false;
    }

    // The payload of the event's single `data:` line, without the field name, the optional
    // space and the line ending. False for comments, `[DONE]`-less events without data, and
    // multi-line data (which vLLM and OpenAI never send).
    public static bool TryGetData(ReadOnlySequence<byte> sseEvent, out ReadOnlySequence<byte> data)
    {
        data = default;
        var found = false;
        var reader = new SequenceReader<byte>(sseEvent);
        while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (!line.IsEmpty && line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r')
            {
                line = line.Slice(0, line.Length - 1);
            }

            var lineReader = new SequenceReader<byte>(line);
            if (!lineReader.IsNext("data:"u8, advancePast: true))
            {
                continue;
            }

            if (found)
            {
                return false;
            }

            lineReader.IsNext((byte)' ', advancePast: true);
            data = lineReader.UnreadSequence;
            found = true;
        }

        return found;
    }
}
