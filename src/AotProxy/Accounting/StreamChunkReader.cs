using System.Buffers;
using System.Text.Json;

namespace AotProxy.Accounting;

// Classifies one SSE event of an OpenAI stream and reads its usage, without allocating.
internal static class StreamChunkReader
{
    public static StreamChunkKind Read(ReadOnlySequence<byte> sseEvent, out Usage usage)
    {
        usage = default;
        if (!SseEventScanner.TryGetData(sseEvent, out var data))
        {
            return StreamChunkKind.Other;
        }

        if (data.Length == 6 && IsDone(data))
        {
            return StreamChunkKind.Done;
        }

        // Most chunks are tokens without usage: a vectorised search is cheaper than a parse.
        if (data.IsSingleSegment && data.FirstSpan.IndexOf("\"usage\""u8) < 0)
        {
            return StreamChunkKind.Other;
        }

        try
        {
            return ReadChunk(data, out usage);
        }
        catch (JsonException)
        {
            usage = default;
            return StreamChunkKind.Other;
        }
    }

    private static bool IsDone(ReadOnlySequence<byte> data)
    {
        Span<byte> buffer = stackalloc byte[6];
        data.CopyTo(buffer);
        return buffer.SequenceEqual("[DONE]"u8);
    }

    private static StreamChunkKind ReadChunk(ReadOnlySequence<byte> json, out Usage usage)
    {
        usage = default;
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return StreamChunkKind.Other;
        }

        var hasUsage = false;
        var choicesEmpty = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    usage = UsageObjectReader.Read(ref reader);
                    hasUsage = true;
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    reader.Read();
                    choicesEmpty = reader.TokenType == JsonTokenType.EndArray;
                    if (!choicesEmpty)
                    {
                        // Back inside the array: skip to its end, one element at a time.
                        reader.Skip();
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        {
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (!hasUsage)
        {
            return StreamChunkKind.Other;
        }

        return choicesEmpty ? StreamChunkKind.UsageOnly : StreamChunkKind.WithUsage;
    }
}
