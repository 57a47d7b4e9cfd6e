using System.Text.Json;

namespace AotProxy.Simulator;

// Bodies of POST /v1/chat/completions, field for field in vLLM's order
// (fixtures/openai/chat_nonstream.json, chat_stream.sse, chat_stream_usage.sse).
internal static class ChatCompletionJson
{
    public static void WriteResponse(Utf8JsonWriter writer, string id, long created, string model, string content, string finishReason, int promptTokens, int completionTokens)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, "chat.completion"u8, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("message"u8);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("content"u8, content);
        writer.WriteNull("refusal"u8);
        writer.WriteNull("annotations"u8);
        writer.WriteNull("audio"u8);
        writer.WriteNull("function_call"u8);
        writer.WriteStartArray("tool_calls"u8);
        writer.WriteEndArray();
        writer.WriteNull("reasoning"u8);
        writer.WriteEndObject();
        writer.WriteNull("logprobs"u8);
        writer.WriteString("finish_reason"u8, finishReason);
        writer.WriteNull("stop_reason"u8);
        writer.WriteNull("token_ids"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteNull("service_tier"u8);
        writer.WriteNull("system_fingerprint"u8);
        UsageJson.Write(writer, promptTokens, completionTokens, withDetails: true);
        writer.WriteNull("prompt_logprobs"u8);
        writer.WriteNull("prompt_token_ids"u8);
        writer.WriteNull("kv_transfer_params"u8);
        writer.WriteEndObject();
    }

    // vLLM sends the role on its own, with empty content, when the first token arrives.
    public static void WriteRoleChunk(Utf8JsonWriter writer, string id, long created, string model)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, "chat.completion.chunk"u8, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("delta"u8);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("content"u8, ""u8);
        writer.WriteEndObject();
        writer.WriteNull("logprobs"u8);
        writer.WriteNull("finish_reason"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteNull("prompt_token_ids"u8);
        writer.WriteEndObject();
    }

    // One chunk per token; the last one carries finish_reason and stop_reason.
    public static void WriteTokenChunk(Utf8JsonWriter writer, string id, long created, string model, string text, string? finishReason)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, "chat.completion.chunk"u8, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("delta"u8);
        writer.WriteString("content"u8, text);
        writer.WriteEndObject();
        writer.WriteNull("logprobs"u8);
        if (finishReason is null)
        {
            writer.WriteNull("finish_reason"u8);
        }
        else
        {
            writer.WriteString("finish_reason"u8, finishReason);
            writer.WriteNull("stop_reason"u8);
        }

        writer.WriteNull("token_ids"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    // Only with stream_options.include_usage: "choices":[] and the totals, after the finish chunk.
    public static void WriteUsageChunk(Utf8JsonWriter writer, string id, long created, string model, int promptTokens, int completionTokens) =>
        UsageJson.WriteChunk(writer, id, "chat.completion.chunk"u8, created, model, promptTokens, completionTokens, withDetails: false);
}
