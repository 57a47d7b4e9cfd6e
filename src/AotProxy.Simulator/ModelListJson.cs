using System.Text.Json;

namespace AotProxy.Simulator;

// GET /v1/models in vLLM's shape (fixtures/openai/models.json): the served model and its LoRA adapters.
internal static class ModelListJson
{
    // adapters: --lora-modules, listed after the model as vLLM lists them: root = the adapter's
    // name (its path, for vLLM), parent = the base model, max_model_len null.
    public static void Write(Utf8JsonWriter writer, string model, long created, int maxModelLen, IReadOnlyList<string> adapters)
    {
        writer.WriteStartObject();
        writer.WriteString("object"u8, "list"u8);
        writer.WriteStartArray("data"u8);
        WriteCard(writer, model, parent: null, created, maxModelLen);
        foreach (var adapter in adapters)
        {
            WriteCard(writer, adapter, model, created, maxModelLen: null);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteCard(Utf8JsonWriter writer, string id, string? parent, long created, int? maxModelLen)
    {
        writer.WriteStartObject();
        writer.WriteString("id"u8, id);
        writer.WriteString("object"u8, "model"u8);
        writer.WriteNumber("created"u8, created);
        writer.WriteString("owned_by"u8, "vllm"u8);
        writer.WriteString("root"u8, id);
        if (parent is null)
        {
            writer.WriteNull("parent"u8);
        }
        else
        {
            writer.WriteString("parent"u8, parent);
        }

        if (maxModelLen is { } length)
        {
            writer.WriteNumber("max_model_len"u8, length);
        }
        else
        {
            writer.WriteNull("max_model_len"u8);
        }

        writer.WriteStartArray("permission"u8);
        writer.WriteStartObject();
        // Derived from the model name, so /v1/models is stable across restarts and processes.
        writer.WriteString("id"u8, $"modelperm-{Fnv1a.Hash(System.Text.Encoding.UTF8.GetBytes(id)):x16}");
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
    }
}
