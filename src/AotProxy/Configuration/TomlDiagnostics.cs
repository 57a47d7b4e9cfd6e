using System.Text.RegularExpressions;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace AotProxy.Configuration;

// What the gateway's config and the load runner's profiles both report about a TOML file before
// and while binding it, in words an operator uses. (perf/AotProxy.Load links this file.)
internal static partial class TomlDiagnostics
{
    // The first syntax error, or null. Only the first: after a syntax error Tomlyn's recovery
    // reports follow-on errors (and half-read keys) that point away from the real mistake.
    // Tomlyn's parser words it, and only runs when the key map's scan stopped somewhere. A table
    // defined twice is an error too, which Tomlyn's deserializer would let pass (it merges them).
    public static (int Line, string Message)? FirstSyntaxError(string toml, TomlKeyMap map)
    {
        if (map.Problem is { } problem)
        {
            var parser = TomlParser.Create(toml, new TomlParserOptions { Mode = TomlParserMode.Tolerant });
            while (parser.MoveNext())
            {
            }

            var first = parser.Diagnostics.FirstOrDefault(d => d.Kind == DiagnosticMessageKind.Error);
            return first is null ? problem : (first.Span.Start.Line + 1, first.Message);
        }

        return map.RedefinedTables is [var (line, path), ..]
            ? (line, $"the table [{path}] is already defined above; write each table once")
            : null;
    }

    // Every root key written with the wrong shape: [name] where [[name]] is expected, or the reverse.
    public static IEnumerable<(int Line, string Key, string Message)> ShapeErrors(TomlKeyMap map, IEnumerable<string> tables, IEnumerable<string> tableArrays)
    {
        foreach (var name in tables)
        {
            if (map.TryGetRootShape(name, out var shape, out var line) && shape != TomlShape.Table)
            {
                yield return (line, name, $"must be a table, written [{name}]");
            }
        }

        foreach (var name in tableArrays)
        {
            if (map.TryGetRootShape(name, out var shape, out var line) && shape != TomlShape.ArrayOfTables)
            {
                yield return (line, name, $"must be an array of tables, written [[{name}]]");
            }
        }
    }

    // Tomlyn wraps the reason in "(line,col) : error : Exception while trying to convert ...
    // Reason: (line,col) : error : Expected Integer token but was String."; the line and key are
    // reported separately, so keep the reason.
    public static string Describe(string message)
    {
        const string Marker = " : error : ";
        var at = message.LastIndexOf(Marker, StringComparison.Ordinal);
        var reason = (at < 0 ? message : message[(at + Marker.Length)..]).Trim().TrimEnd('.');
        var match = ExpectedToken().Match(reason);
        return match.Success
            ? $"expected {TokenWords(match.Groups[1].Value)}, found {TokenWords(match.Groups[2].Value)}"
            : reason;
    }

    private static string TokenWords(string token) => token switch
    {
        "Integer" => "an integer",
        "Float" => "a number",
        "String" => "a string",
        "Boolean" => "true or false",
        "DateTime" => "a date-time",
        "StartTable" => "a table",
        "StartArray" => "an array",
        _ => token,
    };

    [GeneratedRegex(@"^Expected (\w+) token but was (\w+)$", RegexOptions.CultureInvariant)]
    private static partial Regex ExpectedToken();
}
