using System.Text.Json;

namespace AotProxy.Accounting;

// One SSE event with a usage object, of the APIs whose events are typed (the Responses API's, the
// Messages API's): a walk over the event's top-level members that notes its `type` (as TFormat
// numbers it), whether its `delta` carries text, and its usage, from the object TFormat.UsageHolder
// names or from a top-level `usage` (Anthropic's message_delta; a later "usage":null does not undo
// one). The caller (StreamChunkReader) handles what is not JSON.
internal static class UsageEventReader
{
    public static StreamChunkKind Read<TFormat>(ReadOnlySpan<byte> json, out Usage usage)
        where TFormat : struct, IUsageEventFormat
    {
        usage = default;
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return StreamChunkKind.Other;
        }

        byte type = 0;
        var text = false;
        var hasUsage = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.TokenType == JsonTokenType.String ? TFormat.Classify(ref reader) : (byte)0;
            }
            else if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                text = TFormat.DeltaHasText(ref reader);
            }
            else if (reader.ValueTextEquals(TFormat.UsageHolder))
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
            else if (reader.ValueTextEquals("usage"u8))
            {
                if (UsageObjectReader.ReadValue(ref reader, out var read))
                {
                    (usage, hasUsage) = (read, true);
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return TFormat.Kind(type, text, hasUsage);
    }
}
