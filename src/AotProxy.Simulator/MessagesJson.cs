using System.Text.Json;

namespace AotProxy.Simulator;

// Anthropic's Messages API (POST /v1/messages) in vLLM's wire format (vllm/entrypoints/anthropic:
// serving.py, protocol.py; tests/fixtures/vllm-api/SOURCES.md). vLLM serves it through its chat
// completions: the id is the chat's, input_tokens is the whole prompt (no cache fields), and
// message_delta repeats input_tokens beside the output_tokens. Its stream sends no ping.
internal static class MessagesJson
{
    public static void WriteResponse(Utf8JsonWriter writer, string id, string model, string text, string finishReason, int promptTokens, int completionTokens)
    {
        writer.WriteStartObject();
        writer.WriteString("id"u8, id);
        writer.WriteString("type"u8, "message"u8);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteStartArray("content"u8);
        writer.WriteStartObject();
        writer.WriteString("type"u8, "text"u8);
        writer.WriteString("text"u8, text);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteString("model"u8, model);
        writer.WriteString("stop_reason"u8, StopReason(finishReason));
        writer.WriteNull("stop_sequence"u8);
        WriteUsage(writer, promptTokens, completionTokens);
        writer.WriteEndObject();
    }

    // message_start (the input's usage, output 0), then the text block's start.
    public static void WriteOpening(SseEventWriter sse, string id, string model, int promptTokens)
    {
        var start = sse.Begin("message_start"u8);
        start.WriteStartObject();
        start.WriteString("type"u8, "message_start"u8);
        start.WriteStartObject("message"u8);
        start.WriteString("id"u8, id);
        start.WriteString("type"u8, "message"u8);
        start.WriteString("role"u8, "assistant"u8);
        start.WriteStartArray("content"u8);
        start.WriteEndArray();
        start.WriteString("model"u8, model);
        start.WriteNull("stop_reason"u8);
        start.WriteNull("stop_sequence"u8);
        WriteUsage(start, promptTokens, 0);
        start.WriteEndObject();
        start.WriteEndObject();
        sse.End();

        var block = sse.Begin("content_block_start"u8);
        block.WriteStartObject();
        block.WriteString("type"u8, "content_block_start"u8);
        block.WriteNumber("index"u8, 0);
        block.WriteStartObject("content_block"u8);
        block.WriteString("type"u8, "text"u8);
        block.WriteString("text"u8, ""u8);
        block.WriteEndObject();
        block.WriteEndObject();
        sse.End();
    }

    public static void WriteDelta(SseEventWriter sse, string token)
    {
        var json = sse.Begin("content_block_delta"u8);
        json.WriteStartObject();
        json.WriteString("type"u8, "content_block_delta"u8);
        json.WriteNumber("index"u8, 0);
        json.WriteStartObject("delta"u8);
        json.WriteString("type"u8, "text_delta"u8);
        json.WriteString("text"u8, token);
        json.WriteEndObject();
        json.WriteEndObject();
        sse.End();
    }

    // The block's stop, message_delta with the stop reason and the usage, message_stop.
    public static void WriteClosing(SseEventWriter sse, string finishReason, int promptTokens, int completionTokens)
    {
        var stop = sse.Begin("content_block_stop"u8);
        stop.WriteStartObject();
        stop.WriteString("type"u8, "content_block_stop"u8);
        stop.WriteNumber("index"u8, 0);
        stop.WriteEndObject();
        sse.End();

        var delta = sse.Begin("message_delta"u8);
        delta.WriteStartObject();
        delta.WriteString("type"u8, "message_delta"u8);
        delta.WriteStartObject("delta"u8);
        delta.WriteString("stop_reason"u8, StopReason(finishReason));
        delta.WriteEndObject();
        WriteUsage(delta, promptTokens, completionTokens);
        delta.WriteEndObject();
        sse.End();

        var end = sse.Begin("message_stop"u8);
        end.WriteStartObject();
        end.WriteString("type"u8, "message_stop"u8);
        end.WriteEndObject();
        sse.End();
    }

    // vLLM's stop_reason_map: stop -> end_turn, length -> max_tokens.
    private static string StopReason(string finishReason) => finishReason == "length" ? "max_tokens" : "end_turn";

    private static void WriteUsage(Utf8JsonWriter writer, int inputTokens, int outputTokens)
    {
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("input_tokens"u8, inputTokens);
        writer.WriteNumber("output_tokens"u8, outputTokens);
        writer.WriteEndObject();
    }
}
