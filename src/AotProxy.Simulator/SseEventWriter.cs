using System.IO.Pipelines;
using System.Text.Json;

namespace AotProxy.Simulator;

// Writes named SSE events ("event: <type>\ndata: <json>\n\n"), as vLLM frames the Responses API's
// and the Anthropic Messages API's streams (one JSON object per event, on one data line).
internal sealed class SseEventWriter(PipeWriter pipe, Utf8JsonWriter json)
{
    // The event's JSON goes to the returned writer; End closes the event.
    public Utf8JsonWriter Begin(ReadOnlySpan<byte> type)
    {
        Write("event: "u8);
        Write(type);
        Write("\ndata: "u8);
        json.Reset();
        return json;
    }

    public void End()
    {
        json.Flush();
        Write("\n\n"u8);
    }

    // With an explicit size hint: see OpenAiEndpoint.Write.
    private void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(pipe.GetSpan(bytes.Length));
        pipe.Advance(bytes.Length);
    }
}
