using System.Text.Json;

namespace AotProxy.Simulator;

// The nested error shape vLLM 0.10.1 and later send (fixtures/openai/error_vllm_nested.json).
internal static class VllmErrorJson
{
    public static void Write(Utf8JsonWriter writer, string message, string type, int code, string? param = null)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error"u8);
        writer.WriteString("message"u8, message);
        writer.WriteString("type"u8, type);
        if (param is null)
        {
            writer.WriteNull("param"u8);
        }
        else
        {
            writer.WriteString("param"u8, param);
        }

        writer.WriteNumber("code"u8, code);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
