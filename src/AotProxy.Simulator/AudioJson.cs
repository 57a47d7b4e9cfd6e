using System.Text.Json;

namespace AotProxy.Simulator;

// Bodies of POST /v1/audio/transcriptions and /translations, field for field as vLLM writes them
// (vllm/entrypoints/openai/speech_to_text/speech_to_text.py and protocol.py; fixtures in
// tests/fixtures/vllm-api/transcription*.json, translation*.json, transcription_stream.sse).
internal static class AudioJson
{
    // json and text: TranscriptionResponse(text, usage={"type":"duration","seconds":ceil(s)});
    // a translation's TranslationResponse has no usage.
    public static void WriteResponse(Utf8JsonWriter writer, string text, bool translate, long seconds)
    {
        writer.WriteStartObject();
        writer.WriteString("text"u8, text);
        if (!translate)
        {
            writer.WriteStartObject("usage"u8);
            writer.WriteString("type"u8, "duration"u8);
            writer.WriteNumber("seconds"u8, seconds);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    // verbose_json: duration as a string (str(duration_s)), the language, the segments; no usage.
    public static void WriteVerbose(Utf8JsonWriter writer, string text, string? language, double duration, double temperature)
    {
        writer.WriteStartObject();
        writer.WriteString("duration"u8, duration.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        writer.WriteString("language"u8, language);
        writer.WriteString("text"u8, text);
        writer.WriteStartArray("segments"u8);
        writer.WriteStartObject();
        writer.WriteNumber("id"u8, 0);
        writer.WriteNumber("seek"u8, 0);
        writer.WriteNumber("start"u8, 0.0);
        writer.WriteNumber("end"u8, Math.Round(duration, 2));
        writer.WriteString("text"u8, text);
        writer.WriteStartArray("tokens"u8);
        writer.WriteEndArray();
        writer.WriteNumber("temperature"u8, temperature);
        writer.WriteNumber("avg_logprob"u8, -0.25);
        writer.WriteNumber("compression_ratio"u8, 1.0);
        writer.WriteNull("no_speech_prob"u8);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    // One chunk of the stream: {"id","object":"transcription.chunk","created","model","choices":[{"delta":{"content"}}]},
    // the last choice with finish_reason and stop_reason (model_dump_json(exclude_unset=True)).
    public static void WriteChunk(Utf8JsonWriter writer, string id, bool translate, long created, string model, string token, string? finishReason)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, ChunkObject(translate), created, model);
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteStartObject("delta"u8);
        writer.WriteString("content"u8, token);
        writer.WriteEndObject();
        if (finishReason is not null)
        {
            writer.WriteString("finish_reason"u8, finishReason);
            writer.WriteNull("stop_reason"u8);
        }

        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    // The usage chunk, when stream_include_usage: choices [], usage {prompt, total, completion}.
    public static void WriteUsageChunk(Utf8JsonWriter writer, string id, bool translate, long created, string model, int promptTokens, int completionTokens) =>
        UsageJson.WriteChunk(writer, id, ChunkObject(translate), created, model, promptTokens, completionTokens, withDetails: false);

    private static ReadOnlySpan<byte> ChunkObject(bool translate) => translate ? "translation.chunk"u8 : "transcription.chunk"u8;
}
