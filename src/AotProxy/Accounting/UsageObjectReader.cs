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

    // The reader is on a `usage` property's name: reads its object, or skips a value that is none
    // (null). True when it was one; on return the reader is on the value's last token.
    public static bool ReadValue(ref Utf8JsonReader reader, out Usage usage)
    {
        usage = default;
        reader.Read();
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return false;
        }

        usage = Read(ref reader);
        return true;
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
            if (reader.ValueTextEquals("usage"u8))
            {
                if (ReadValue(ref reader, out var read))
                {
                    (usage, found) = (read, true);
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return found;
    }
}
