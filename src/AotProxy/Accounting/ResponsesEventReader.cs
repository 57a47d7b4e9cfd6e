using System.Text.Json;

namespace AotProxy.Accounting;

// The Responses API's stream events (OpenAI's typed events, as vLLM's serving_responses writes
// them), read by UsageEventReader. Content: `response.output_text.delta` and
// `response.reasoning_text.delta` with a non-empty `delta` (vLLM sends one per generated token).
// Usage: the final `response.completed` event's `response.usage` (also `response.incomplete` and
// `response.failed`, which end a stream the same way); `response.created` carries `usage: null`.
internal readonly struct ResponsesEventReader : IUsageEventFormat
{
    private const byte Delta = 1;
    private const byte Final = 2;

    public static ReadOnlySpan<byte> UsageHolder => "response"u8;

    public static byte Classify(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("response.output_text.delta"u8) || reader.ValueTextEquals("response.reasoning_text.delta"u8) ? Delta
        : reader.ValueTextEquals("response.completed"u8) || reader.ValueTextEquals("response.incomplete"u8) || reader.ValueTextEquals("response.failed"u8) ? Final
        : (byte)0;

    public static bool DeltaHasText(ref Utf8JsonReader reader)
    {
        var text = reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0;
        reader.Skip();
        return text;
    }

    public static StreamChunkKind Kind(byte type, bool text, bool hasUsage) => type switch
    {
        Delta when text => StreamChunkKind.Content,
        Final when hasUsage => StreamChunkKind.WithUsage,
        _ => StreamChunkKind.Other,
    };
}
