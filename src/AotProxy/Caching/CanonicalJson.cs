using System.Text.Json;

namespace AotProxy.Caching;

// A JSON value in one canonical form: object members ordered by name (ordinal, stable for a
// duplicate name, so which one vLLM takes, the last, still differs), no insignificant
// whitespace, strings re-escaped by one encoder ("\u0041" and "A" are the same). Numbers keep
// their text: 0 and 0.0 are different keys, which costs a miss, never a wrong answer.
internal static class CanonicalJson
{
    public static void Write(Utf8JsonWriter writer, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                WriteMembers(writer, value, static _ => true);
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray())
                {
                    Write(writer, item);
                }

                writer.WriteEndArray();
                break;
            case JsonValueKind.String:
                writer.WriteStringValue(value.GetString());
                break;
            default:
                value.WriteTo(writer); // numbers, true, false, null: as written
                break;
        }
    }

    // An object's members that `keep` names, in canonical order, without the braces.
    public static void WriteMembers(Utf8JsonWriter writer, JsonElement value, Func<string, bool> keep)
    {
        foreach (var member in value.EnumerateObject().OrderBy(member => member.Name, StringComparer.Ordinal))
        {
            if (keep(member.Name))
            {
                writer.WritePropertyName(member.Name);
                Write(writer, member.Value);
            }
        }
    }
}
