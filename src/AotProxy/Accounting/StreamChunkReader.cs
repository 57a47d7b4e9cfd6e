using System.Buffers;
using System.Text.Json;
using AotProxy.Http;
using AotProxy.Memory;

namespace AotProxy.Accounting;

// Classifies one SSE event of a stream and reads its usage, without allocating: chat and
// completions chunks here, the Responses API's and the Messages API's events by their own readers.
internal static class StreamChunkReader
{
    public static StreamChunkKind Read(ReadOnlySequence<byte> sseEvent, out Usage usage, EndpointKind endpoint = EndpointKind.ChatCompletions)
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

        return data.IsSingleSegment ? ReadData(data.First, endpoint, out usage) : ReadSplitData(data, endpoint, out usage);
    }

    // Data split across segments is read from one contiguous copy. Utf8JsonReader over several
    // segments throws IndexOutOfRangeException on a literal cut short at the end of its input
    // ("nu", a .NET bug the fuzz pass of issue 14 found), and the search for "usage" below would
    // miss one split in two. The relay's reads are one contiguous buffer each: only tests (and any
    // future reader of pieces) pay for the copy.
    private static StreamChunkKind ReadSplitData(ReadOnlySequence<byte> data, EndpointKind endpoint, out Usage usage)
    {
        var copy = BufferPool.Shared.Rent((int)data.Length);
        try
        {
            data.CopyTo(copy);
            return ReadData(copy.AsMemory(0, (int)data.Length), endpoint, out usage);
        }
        finally
        {
            BufferPool.Shared.Return(copy);
        }
    }

    private static StreamChunkKind ReadData(ReadOnlyMemory<byte> data, EndpointKind endpoint, out Usage usage)
    {
        try
        {
            return endpoint switch
            {
                EndpointKind.Responses => UsageEventReader.Read<ResponsesEventReader>(data.Span, out usage),
                EndpointKind.Messages => UsageEventReader.Read<MessagesEventReader>(data.Span, out usage),
                // Most chunks are tokens without usage: a vectorised search lets the parse stop after
                // `choices` (which vLLM and OpenAI send before everything but the chunk's id and model).
                _ => ReadChunk(data.Span, data.Span.IndexOf("\"usage\""u8) >= 0, out usage),
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not JSON, or a name with an escaped lone surrogate ("\ud800"), which ValueTextEquals
            // throws InvalidOperationException on when it unescapes it to compare (issue 14's fuzz
            // pass): a chunk the relay passes on untouched, without usage.
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

    private static StreamChunkKind ReadChunk(ReadOnlySpan<byte> json, bool mayHaveUsage, out Usage usage)
    {
        usage = default;
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return StreamChunkKind.Other;
        }

        var hasUsage = false;
        var choicesEmpty = false;
        var text = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("usage"u8))
            {
                if (UsageObjectReader.ReadValue(ref reader, out var read))
                {
                    (usage, hasUsage) = (read, true); // a later "usage":null does not undo it
                }
            }
            else if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    text = ReadChoices(ref reader, out choicesEmpty);
                    if (!mayHaveUsage)
                    {
                        break;
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
            return text ? StreamChunkKind.Content : StreamChunkKind.Other;
        }

        return choicesEmpty ? StreamChunkKind.UsageOnly : StreamChunkKind.WithUsage;
    }

    // The reader is on the choices' StartArray; on return it is on its EndArray. True when a
    // choice carries generated text: a non-empty `delta.content`, `delta.reasoning_content` or
    // `delta.reasoning` (chat; vLLM names reasoning either way), a non-empty `delta.tool_calls`,
    // or a non-empty `text` (completions). The role chunk and the finish chunk carry "" and
    // are not tokens of their own.
    private static bool ReadChoices(ref Utf8JsonReader reader, out bool empty)
    {
        var arrayDepth = reader.CurrentDepth;
        var text = false;
        empty = true;
        while (reader.Read() && reader.CurrentDepth > arrayDepth)
        {
            empty = false;
            if (text || reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            var depth = reader.CurrentDepth - arrayDepth; // 2: a choice's field; 3: a field of its delta
            var isText = (depth == 2 && reader.ValueTextEquals("text"u8))
                || (depth == 3 && (reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("reasoning"u8)));
            var isToolCalls = !isText && depth == 3 && reader.ValueTextEquals("tool_calls"u8);
            if (!isText && !isToolCalls)
            {
                continue;
            }

            reader.Read();
            if (isText)
            {
                text = reader.TokenType == JsonTokenType.String && (reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length) > 0;
            }
            else if (reader.TokenType == JsonTokenType.StartArray)
            {
                reader.Read();
                text = reader.TokenType != JsonTokenType.EndArray;
            }
        }

        return text;
    }
}
