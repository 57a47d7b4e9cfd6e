using System.Text.Json;

namespace AotProxy.Accounting;

internal static class UsageObjectReader
{
    // The reader is on the usage object's StartObject; on return it is on its EndObject (or at
    // the end of the input, for a truncated object).
    public static Usage Read(ref Utf8JsonReader reader)
    {
        var depth = reader.CurrentDepth;
        var fields = default(UsageFields);
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            fields.Take(ref reader, reader.CurrentDepth - depth);
        }

        return fields.Usage;
    }

    // The reader is on the StartObject of an object that may hold a `usage` object (a Responses
    // event's `response`, an Anthropic event's `message`); on return it is on that object's
    // EndObject. False when it has none (absent or null).
    public static bool ReadNested(ref Utf8JsonReader reader, out Usage usage)
    {
        usage = default;
        var found = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isUsage = reader.ValueTextEquals("usage"u8);
            reader.Read();
            if (isUsage && reader.TokenType == JsonTokenType.StartObject)
            {
                usage = Read(ref reader);
                found = true;
            }
            else
            {
                reader.Skip();
            }
        }

        return found;
    }
}
