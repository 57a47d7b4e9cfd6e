using System.Text.Json;

namespace AotProxy.Simulator;

internal static class UsageJson
{
    // vLLM's field order: prompt, total, completion. Non-stream bodies (and completion streams,
    // dumped without exclude_unset) also carry prompt_tokens_details; chat streams do not.
    public static void Write(Utf8JsonWriter writer, int promptTokens, int completionTokens, bool withDetails)
    {
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("prompt_tokens"u8, promptTokens);
        writer.WriteNumber("total_tokens"u8, promptTokens + completionTokens);
        writer.WriteNumber("completion_tokens"u8, completionTokens);
        if (withDetails)
        {
            writer.WriteNull("prompt_tokens_details"u8);
        }

        writer.WriteEndObject();
    }

    // A stream's usage chunk (stream_options.include_usage): "choices":[] and the totals, after
    // the finish chunk; objectName is the stream's chunk object.
    public static void WriteChunk(Utf8JsonWriter writer, string id, ReadOnlySpan<byte> objectName, long created, string model, int promptTokens, int completionTokens, bool withDetails)
    {
        writer.WriteStartObject();
        WriteHeader(writer, id, objectName, created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteEndArray();
        Write(writer, promptTokens, completionTokens, withDetails);
        writer.WriteEndObject();
    }

    public static void WriteHeader(Utf8JsonWriter writer, string id, ReadOnlySpan<byte> objectName, long created, string model)
    {
        writer.WriteString("id"u8, id);
        writer.WriteString("object"u8, objectName);
        writer.WriteNumber("created"u8, created);
        writer.WriteString("model"u8, model);
    }
}
