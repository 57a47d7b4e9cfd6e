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
        writer.WriteString("param"u8, param); // a null string is written as JSON null

        writer.WriteNumber("code"u8, code);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
