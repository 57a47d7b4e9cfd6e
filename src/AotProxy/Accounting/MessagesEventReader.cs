using System.Text.Json;

namespace AotProxy.Accounting;

// Anthropic Messages stream events (as vLLM's anthropic entrypoint and Anthropic's API write them),
// read by UsageEventReader. Content: `content_block_delta` whose delta carries text (`text`,
// `thinking` or a tool call's `partial_json`; a thinking block's closing `signature` is no token).
// Usage, in parts: `message_start`'s `message.usage` (PromptUsage: the input) and
// `message_delta`'s `usage` (UsagePart: the output; vLLM repeats the input there). A stream cut
// between the two is estimated, as a chat stream cut before its usage chunk.
internal readonly struct MessagesEventReader : IUsageEventFormat
{
    private const byte BlockDelta = 1;
    private const byte Start = 2;
    private const byte Delta = 3;

    public static ReadOnlySpan<byte> UsageHolder => "message"u8;

    public static byte Classify(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("content_block_delta"u8) ? BlockDelta
        : reader.ValueTextEquals("message_start"u8) ? Start
        : reader.ValueTextEquals("message_delta"u8) ? Delta
        : (byte)0;

    // An object whose text members are non-empty; anything else is skipped.
    public static bool DeltaHasText(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return false;
        }

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

    public static StreamChunkKind Kind(byte type, bool text, bool hasUsage) => type switch
    {
        BlockDelta when text => StreamChunkKind.Content,
        Start when hasUsage => StreamChunkKind.PromptUsage,
        Delta when hasUsage => StreamChunkKind.UsagePart,
        _ => StreamChunkKind.Other,
    };
}
