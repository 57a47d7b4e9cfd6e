using System.Collections.Immutable;
using System.Text.Json;

namespace AotProxy.Routing;

// Reads the models out of an OpenAI `GET /v1/models` body ({"object":"list","data":[{"id":…},…]}),
// with vLLM's `parent` and `root`, which tell a LoRA adapter from a base model.
internal static class ModelListReader
{
    public static bool TryReadIds(ReadOnlySpan<byte> json, out ImmutableArray<string> ids)
    {
        var read = TryRead(json, out var models);
        ids = read ? [.. models.Select(m => m.Id)] : [];
        return read;
    }

    public static bool TryRead(ReadOnlySpan<byte> json, out ImmutableArray<ListedModel> models)
    {
        models = [];
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            var builder = ImmutableArray.CreateBuilder<ListedModel>();
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isData = reader.ValueTextEquals("data"u8);
                reader.Read();
                if (!isData || reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                {
                    if (ReadEntry(ref reader) is { } entry)
                    {
                        builder.Add(entry);
                    }
                }
            }

            models = builder.ToImmutable();
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    // One object of `data`, the reader on its StartObject; null without a string id.
    private static ListedModel? ReadEntry(ref Utf8JsonReader reader)
    {
        string? id = null, parent = null, root = null;
        var maxModelLen = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("max_model_len"u8))
            {
                reader.Read();
                maxModelLen = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var length) && length > 0 ? length : 0;
                continue;
            }

            ref var field = ref id;
            if (reader.ValueTextEquals("parent"u8))
            {
                field = ref parent;
            }
            else if (reader.ValueTextEquals("root"u8))
            {
                field = ref root;
            }
            else if (!reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                reader.Skip();
                continue;
            }

            reader.Read();
            if (reader.TokenType == JsonTokenType.String)
            {
                field = reader.GetString();
            }
            else
            {
                reader.Skip();
            }
        }

        return id is null ? null : new ListedModel(id, parent, root, maxModelLen);
    }
}
