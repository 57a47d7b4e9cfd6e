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
}
