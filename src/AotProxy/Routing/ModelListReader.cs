using System.Collections.Immutable;
using System.Text.Json;

namespace AotProxy.Routing;

// Reads the model ids out of an OpenAI `GET /v1/models` body ({"object":"list","data":[{"id":…},…]}).
internal static class ModelListReader
{
    public static bool TryReadIds(ReadOnlySpan<byte> json, out ImmutableArray<string> ids)
    {
        ids = [];
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            var builder = ImmutableArray.CreateBuilder<string>();
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
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isId = reader.ValueTextEquals("id"u8);
                        reader.Read();
                        if (isId && reader.TokenType == JsonTokenType.String)
                        {
                            builder.Add(reader.GetString()!);
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }
                }
            }

            ids = builder.ToImmutable();
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
