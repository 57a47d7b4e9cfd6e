using System.Text;
using System.Text.Json;

namespace AotProxy.Simulator.Tests;

// The sequence of property paths in document order ("choices[].message.role"): two bodies with
// equal sequences have the same fields, nesting and order, whatever their values.
internal static class JsonShape
{
    public static List<string> Paths(string json)
    {
        var paths = new List<string>();
        var stack = new List<string>();
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json));
        string? pending = null;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    pending = reader.GetString()!;
                    var path = string.Join('.', stack.Append(pending).Where(s => s.Length > 0));
                    paths.Add(path.Replace(".[]", "[]", StringComparison.Ordinal));
                    break;
                case JsonTokenType.StartObject:
                    stack.Add(pending ?? string.Empty);
                    pending = null;
                    break;
                case JsonTokenType.StartArray:
                    stack.Add((pending ?? string.Empty) + "[]");
                    pending = null;
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    stack.RemoveAt(stack.Count - 1);
                    break;
                default:
                    pending = null;
                    break;
            }
        }

        return paths;
    }
}
