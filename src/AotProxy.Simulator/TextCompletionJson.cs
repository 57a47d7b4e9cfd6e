using System.Text.Json;

namespace AotProxy.Simulator;

// Bodies of POST /v1/completions in vLLM's field order (fixtures/openai/completions.json).
// vLLM dumps completion stream chunks with every field, so unlike chat chunks they carry
// stop_reason, prompt_token_ids, token_ids and a top-level "usage":null on each chunk.
internal static class TextCompletionJson
{
    public static void WriteResponse(Utf8JsonWriter writer, string id, long created, string model, string text, string finishReason, int promptTokens, int completionTokens)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, "text_completion"u8, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteString("text"u8, text);
        writer.WriteNull("logprobs"u8);
        writer.WriteString("finish_reason"u8, finishReason);
        writer.WriteNull("stop_reason"u8);
        writer.WriteNull("token_ids"u8);
        writer.WriteNull("prompt_logprobs"u8);
        writer.WriteNull("prompt_token_ids"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteNull("service_tier"u8);
        writer.WriteNull("system_fingerprint"u8);
        UsageJson.Write(writer, promptTokens, completionTokens, withDetails: true);
        writer.WriteNull("kv_transfer_params"u8);
        writer.WriteEndObject();
    }

    public static void WriteTokenChunk(Utf8JsonWriter writer, string id, long created, string model, string text, string? finishReason)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, "text_completion"u8, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteString("text"u8, text);
        writer.WriteNull("logprobs"u8);
        if (finishReason is null)
        {
            writer.WriteNull("finish_reason"u8);
        }
        else
        {
            writer.WriteString("finish_reason"u8, finishReason);
        }

        writer.WriteNull("stop_reason"u8);
        writer.WriteNull("prompt_token_ids"u8);
        writer.WriteNull("token_ids"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteNull("usage"u8);
        writer.WriteEndObject();
    }

    public static void WriteUsageChunk(Utf8JsonWriter writer, string id, long created, string model, int promptTokens, int completionTokens) =>
        UsageJson.WriteChunk(writer, id, "text_completion"u8, created, model, promptTokens, completionTokens, withDetails: true);
}
