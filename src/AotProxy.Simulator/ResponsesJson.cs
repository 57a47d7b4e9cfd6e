using System.Text;
using System.Text.Json;

namespace AotProxy.Simulator;

// The Responses API (POST /v1/responses) in vLLM's wire format (vllm/entrypoints/openai/responses:
// serving.py, simple_streaming_events.py; tests/fixtures/vllm-api/SOURCES.md): the response
// object, and the stream of typed events for one output message. One instance per stream: it
// keeps the event sequence number and the text for the *.done events.
internal sealed class ResponsesJson(string id, long created, string model, int maxOutputTokens)
{
    private readonly string _itemId = "msg_" + id["resp_".Length..];
    private readonly StringBuilder _text = new();
    private int _sequence;

    public static void WriteResponse(Utf8JsonWriter writer, string id, long created, string model, int maxOutputTokens, string? text, string? finishReason, int promptTokens, int completionTokens)
    {
        var done = finishReason is not null;
        var incomplete = finishReason == "length";
        writer.WriteStartObject();
        writer.WriteString("id"u8, id);
        writer.WriteNumber("created_at"u8, created);
        if (incomplete)
        {
            writer.WriteStartObject("incomplete_details"u8);
            writer.WriteString("reason"u8, "max_output_tokens"u8);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("incomplete_details"u8);
        }

        writer.WriteNull("instructions"u8);
        writer.WriteNull("metadata"u8);
        writer.WriteString("model"u8, model);
        writer.WriteString("object"u8, "response"u8);
        writer.WriteStartArray("output"u8);
        if (text is not null)
        {
            WriteMessageItem(writer, "msg_" + id["resp_".Length..], text, "completed"u8);
        }

        writer.WriteEndArray();
        writer.WriteBoolean("parallel_tool_calls"u8, true);
        writer.WriteNumber("temperature"u8, 1.0);
        writer.WriteString("tool_choice"u8, "auto"u8);
        writer.WriteStartArray("tools"u8);
        writer.WriteEndArray();
        writer.WriteNumber("top_p"u8, 1.0);
        writer.WriteBoolean("background"u8, false);
        writer.WriteNumber("max_output_tokens"u8, maxOutputTokens);
        writer.WriteNull("max_tool_calls"u8);
        writer.WriteNull("previous_response_id"u8);
        writer.WriteNull("prompt"u8);
        writer.WriteNull("reasoning"u8);
        writer.WriteString("service_tier"u8, "auto"u8);
        writer.WriteString("status"u8, !done ? "in_progress"u8 : incomplete ? "incomplete"u8 : "completed"u8);
        writer.WriteNull("text"u8);
        writer.WriteNull("top_logprobs"u8);
        writer.WriteString("truncation"u8, "disabled"u8);
        if (done)
        {
            writer.WriteStartObject("usage"u8);
            writer.WriteNumber("input_tokens"u8, promptTokens);
            writer.WriteStartObject("input_tokens_details"u8);
            writer.WriteNumber("cached_tokens"u8, 0);
            writer.WriteEndObject();
            writer.WriteNumber("output_tokens"u8, completionTokens);
            writer.WriteStartObject("output_tokens_details"u8);
            writer.WriteNumber("reasoning_tokens"u8, 0);
            writer.WriteEndObject();
            writer.WriteNumber("total_tokens"u8, promptTokens + completionTokens);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("usage"u8);
        }

        writer.WriteNull("user"u8);
        writer.WriteEndObject();
    }

    // response.created, response.in_progress, then the message item and its text part.
    public void WriteOpening(SseEventWriter sse)
    {
        foreach (var type in (ReadOnlySpan<string>)["response.created", "response.in_progress"])
        {
            var json = Begin(sse, Encoding.ASCII.GetBytes(type));
            json.WritePropertyName("response"u8);
            WriteResponse(json, id, created, model, maxOutputTokens, text: null, finishReason: null, 0, 0);
            End(sse, json);
        }

        var added = Begin(sse, "response.output_item.added"u8);
        added.WriteNumber("output_index"u8, 0);
        added.WritePropertyName("item"u8);
        WriteMessageItem(added, _itemId, text: null, "in_progress"u8);
        End(sse, added);

        var part = Begin(sse, "response.content_part.added"u8);
        WritePlace(part);
        part.WritePropertyName("part"u8);
        WriteTextPart(part, string.Empty);
        End(sse, part);
    }

    public void WriteDelta(SseEventWriter sse, string token)
    {
        _text.Append(token);
        var json = Begin(sse, "response.output_text.delta"u8);
        WritePlace(json);
        json.WriteString("delta"u8, token);
        json.WriteStartArray("logprobs"u8);
        json.WriteEndArray();
        End(sse, json);
    }

    // The text's done events, then response.completed with the usage.
    public void WriteClosing(SseEventWriter sse, string finishReason, int promptTokens, int completionTokens)
    {
        var text = _text.ToString();
        var done = Begin(sse, "response.output_text.done"u8);
        WritePlace(done);
        done.WriteString("text"u8, text);
        done.WriteStartArray("logprobs"u8);
        done.WriteEndArray();
        End(sse, done);

        var part = Begin(sse, "response.content_part.done"u8);
        WritePlace(part);
        part.WritePropertyName("part"u8);
        WriteTextPart(part, text);
        End(sse, part);

        var item = Begin(sse, "response.output_item.done"u8);
        item.WriteNumber("output_index"u8, 0);
        item.WritePropertyName("item"u8);
        WriteMessageItem(item, _itemId, text, "completed"u8);
        End(sse, item);

        var completed = Begin(sse, "response.completed"u8);
        completed.WritePropertyName("response"u8);
        WriteResponse(completed, id, created, model, maxOutputTokens, text, finishReason, promptTokens, completionTokens);
        End(sse, completed);
    }

    private static void WriteMessageItem(Utf8JsonWriter writer, string itemId, string? text, ReadOnlySpan<byte> status)
    {
        writer.WriteStartObject();
        writer.WriteString("id"u8, itemId);
        writer.WriteStartArray("content"u8);
        if (text is not null)
        {
            WriteTextPart(writer, text);
        }

        writer.WriteEndArray();
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("status"u8, status);
        writer.WriteString("type"u8, "message"u8);
        writer.WriteEndObject();
    }

    private static void WriteTextPart(Utf8JsonWriter writer, string text)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("annotations"u8);
        writer.WriteEndArray();
        writer.WriteString("text"u8, text);
        writer.WriteString("type"u8, "output_text"u8);
        writer.WriteNull("logprobs"u8);
        writer.WriteEndObject();
    }

    // Every event: its type and sequence number, the object's first fields as vLLM dumps them.
    private Utf8JsonWriter Begin(SseEventWriter sse, ReadOnlySpan<byte> type)
    {
        var json = sse.Begin(type);
        json.WriteStartObject();
        json.WriteString("type"u8, type);
        json.WriteNumber("sequence_number"u8, _sequence++);
        return json;
    }

    // Closes the object Begin opened, and the event.
    private static void End(SseEventWriter sse, Utf8JsonWriter json)
    {
        json.WriteEndObject();
        sse.End();
    }

    private void WritePlace(Utf8JsonWriter json)
    {
        json.WriteString("item_id"u8, _itemId);
        json.WriteNumber("output_index"u8, 0);
        json.WriteNumber("content_index"u8, 0);
    }
}
