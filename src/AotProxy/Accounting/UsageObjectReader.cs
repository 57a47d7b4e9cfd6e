using System.Text.Json;

namespace AotProxy.Accounting;

internal static class UsageObjectReader
{
    // The reader is on the usage object's StartObject; on return it is on its EndObject.
    public static Usage Read(ref Utf8JsonReader reader)
    {
        long prompt = 0, completion = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = reader.ValueTextEquals("prompt_tokens"u8) ? 1
                : reader.ValueTextEquals("completion_tokens"u8) ? 2
                : 0;
            reader.Read();
            if (field != 0 && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value) && value >= 0)
            {
                if (field == 1)
                {
                    prompt = value;
                }
                else
                {
                    completion = value;
                }
            }
            else
            {
                reader.Skip();
            }
        }

        return new Usage(prompt, completion);
    }
}
