using System.Text.Json;

namespace AotProxy.Simulator;

// GET /v1/models in vLLM's shape (fixtures/openai/models.json), for the one served model.
internal static class ModelListJson
{
    public static void Write(Utf8JsonWriter writer, string model, long created, int maxModelLen)
    {
        writer.WriteStartObject();
        writer.WriteString("object"u8, "list"u8);
        writer.WriteStartArray("data"u8);
        writer.WriteStartObject();
        writer.WriteString("id"u8, model);
        writer.WriteString("object"u8, "model"u8);
        writer.WriteNumber("created"u8, created);
        writer.WriteString("owned_by"u8, "vllm"u8);
        writer.WriteString("root"u8, model);
        writer.WriteNull("parent"u8);
        writer.WriteNumber("max_model_len"u8, maxModelLen);
        writer.WriteStartArray("permission"u8);
        writer.WriteStartObject();
        // Derived from the model name, so /v1/models is stable across restarts and processes.
        writer.WriteString("id"u8, $"modelperm-{Fnv1a.Hash(System.Text.Encoding.UTF8.GetBytes(model)):x16}");
        writer.WriteString("object"u8, "model_permission"u8);
        writer.WriteNumber("created"u8, created);
        writer.WriteBoolean("allow_create_engine"u8, false);
        writer.WriteBoolean("allow_sampling"u8, true);
        writer.WriteBoolean("allow_logprobs"u8, true);
        writer.WriteBoolean("allow_search_indices"u8, false);
        writer.WriteBoolean("allow_view"u8, true);
        writer.WriteBoolean("allow_fine_tuning"u8, false);
        writer.WriteString("organization"u8, "*"u8);
        writer.WriteNull("group"u8);
        writer.WriteBoolean("is_blocking"u8, false);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
