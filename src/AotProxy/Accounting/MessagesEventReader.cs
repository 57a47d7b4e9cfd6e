using System.Text.Json;

namespace AotProxy.Accounting;

// Classifies the data of one Anthropic Messages stream event (as vLLM's anthropic entrypoint and
// Anthropic's API write them) and reads its usage. Content: `content_block_delta` whose delta
// carries text (`text`, `thinking` or a tool call's `partial_json`; a thinking block's closing
// `signature` is no token). Usage, in parts: `message_start`'s `message.usage` (PromptUsage: the
// input) and `message_delta`'s `usage` (UsagePart: the output; vLLM repeats the input there).
// A stream cut between the two is estimated, as a chat stream cut before its usage chunk.
internal static class MessagesEventReader
{
    private enum EventType : byte
    {
        Other,
        BlockDelta,
        Start,
        Delta,
    }

    // The caller (StreamChunkReader) handles what is not JSON.
    public static StreamChunkKind Read(ReadOnlySpan<byte> json, out Usage usage)
    {
        usage = default;
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return StreamChunkKind.Other;
        }

        var type = EventType.Other;
        var text = false;
        var hasUsage = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.TokenType != JsonTokenType.String ? EventType.Other
                    : reader.ValueTextEquals("content_block_delta"u8) ? EventType.BlockDelta
                    : reader.ValueTextEquals("message_start"u8) ? EventType.Start
                    : reader.ValueTextEquals("message_delta"u8) ? EventType.Delta
                    : EventType.Other;
            }
            else if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                text = reader.TokenType == JsonTokenType.StartObject ? HasText(ref reader) : SkipFalse(ref reader);
            }
            else if (reader.ValueTextEquals("message"u8))
            {
                reader.Read();
                hasUsage = reader.TokenType == JsonTokenType.StartObject ? UsageObjectReader.ReadNested(ref reader, out usage) : SkipFalse(ref reader);
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                if (UsageObjectReader.ReadValue(ref reader, out var read))
                {
                    (usage, hasUsage) = (read, true); // a later "usage":null does not undo it
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return type switch
        {
            EventType.BlockDelta when text => StreamChunkKind.Content,
            EventType.Start when hasUsage => StreamChunkKind.PromptUsage,
            EventType.Delta when hasUsage => StreamChunkKind.UsagePart,
            _ => StreamChunkKind.Other,
        };
    }

    // The reader is on the delta's StartObject; on return, on its EndObject.
    private static bool HasText(ref Utf8JsonReader reader)
    {
        var text = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isText = reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("thinking"u8) || reader.ValueTextEquals("partial_json"u8);
            reader.Read();
            text |= isText && reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0;
            reader.Skip();
        }

        return text;
    }

    private static bool SkipFalse(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return false;
    }
}
