using System.Text.Json;

namespace AotProxy.Accounting;

// Classifies the data of one Responses API stream event (OpenAI's typed events, as vLLM's
// serving_responses writes them) and reads its usage. Content: `response.output_text.delta` and
// `response.reasoning_text.delta` with a non-empty `delta` (vLLM sends one per generated token).
// Usage: the final `response.completed` event's `response.usage` (also `response.incomplete` and
// `response.failed`, which end a stream the same way); `response.created` carries `usage: null`.
internal static class ResponsesEventReader
{
    private enum EventType : byte
    {
        Other,
        Delta,
        Final,
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
                    : reader.ValueTextEquals("response.output_text.delta"u8) || reader.ValueTextEquals("response.reasoning_text.delta"u8) ? EventType.Delta
                    : reader.ValueTextEquals("response.completed"u8) || reader.ValueTextEquals("response.incomplete"u8) || reader.ValueTextEquals("response.failed"u8) ? EventType.Final
                    : EventType.Other;
            }
            else if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                text = reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0;
                reader.Skip();
            }
            else if (reader.ValueTextEquals("response"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    hasUsage = UsageObjectReader.ReadNested(ref reader, out usage);
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

        return type switch
        {
            EventType.Delta when text => StreamChunkKind.Content,
            EventType.Final when hasUsage => StreamChunkKind.WithUsage,
            _ => StreamChunkKind.Other,
        };
    }
}
