using Tomlyn.Syntax;

namespace AotProxy.Configuration;

// Where each key of a TOML document is written, so that every error (syntax, type, validation,
// unknown key) can name its line. Paths look like "server.listen", "workers[1].url",
// "tenants[0]" (the [[tenants]] header) and "tenants[0].api_key_sha256[2]" (an array item).
// Built from Tomlyn's syntax tree rather than its event stream: the tree keeps the line of
// every [[table]] header, the event stream only of the first.
internal sealed class TomlKeyMap
{
    private readonly Dictionary<string, int> _lineByPath = new(StringComparer.Ordinal);

    // Per line, the keys that start on it by column: a type error's position maps to the
    // last key that starts at or before it (inline tables put several keys on one line).
    private readonly Dictionary<int, List<(int Column, string Path)>> _keysByLine = [];

    // How many [[name]] headers have been seen per resolved path, to number the next one.
    private readonly Dictionary<string, int> _tableArrayCounts = new(StringComparer.Ordinal);

    // How each top-level name is defined, to catch "[[server]]" or "workers = 1" before binding.
    private readonly Dictionary<string, (TomlShape Shape, int Line)> _rootShapes = new(StringComparer.Ordinal);

    private TomlKeyMap()
    {
    }

    public static TomlKeyMap Build(DocumentSyntax document)
    {
        var map = new TomlKeyMap();
        foreach (var keyValue in document.KeyValues)
        {
            map.AddKeyValue("", keyValue);
        }

        foreach (var table in document.Tables)
        {
            map.AddTable(table);
        }

        return map;
    }

    // The line of path, or of its nearest written ancestor (a missing key reports the line of
    // its table header); 0 when nothing on the way is written down.
    public int LineOf(string path)
    {
        while (path.Length > 0)
        {
            if (_lineByPath.TryGetValue(path, out var line))
            {
                return line;
            }

            path = Parent(path);
        }

        return 0;
    }

    // Whether path itself is written in the document (no fallback to its ancestors).
    public bool Contains(string path) => _lineByPath.ContainsKey(path);

    // The key written at (line, column), "" when that line holds no key.
    public string KeyAt(int line, int column)
    {
        if (!_keysByLine.TryGetValue(line, out var keys))
        {
            return "";
        }

        var best = keys[0].Path;
        foreach (var (keyColumn, path) in keys)
        {
            if (keyColumn <= column)
            {
                best = path;
            }
        }

        return best;
    }

    public bool TryGetRootShape(string name, out TomlShape shape, out int line)
    {
        var found = _rootShapes.TryGetValue(name, out var entry);
        (shape, line) = entry;
        return found;
    }

    public static string Parent(string path)
    {
        if (path.EndsWith(']'))
        {
            var open = path.LastIndexOf('[');
            return open <= 0 ? "" : path[..open];
        }

        var dot = path.LastIndexOf('.');
        return dot < 0 ? "" : path[..dot];
    }

    private void AddTable(TableSyntaxBase table)
    {
        if (table.Name is not { } name)
        {
            return;
        }

        var (line, column) = Position(name);
        var isArray = table is TableArraySyntax;
        var segments = Segments(name);
        var path = "";
        for (var i = 0; i < segments.Count; i++)
        {
            path = Join(path, segments[i]);
            var last = i == segments.Count - 1;
            if (i == 0)
            {
                var shape = last && isArray ? TomlShape.ArrayOfTables : TomlShape.Table;
                _rootShapes.TryAdd(segments[0], (shape, line));
            }

            if (last && isArray)
            {
                _lineByPath.TryAdd(path, line);
                var index = _tableArrayCounts.GetValueOrDefault(path);
                _tableArrayCounts[path] = index + 1;
                path = $"{path}[{index}]";
            }
            else if (!last && _tableArrayCounts.TryGetValue(path, out var count))
            {
                // [workers.extra] after [[workers]] extends the latest workers element.
                _lineByPath.TryAdd(path, line);
                path = $"{path}[{count - 1}]";
            }

            _lineByPath.TryAdd(path, line);
        }

        AddKey(path, line, column);
        foreach (var keyValue in table.Items)
        {
            AddKeyValue(path, keyValue);
        }
    }

    private void AddKeyValue(string prefix, KeyValueSyntax keyValue)
    {
        if (keyValue.Key is not { } key)
        {
            return;
        }

        var (line, column) = Position(key);
        var segments = Segments(key);
        var path = prefix;
        foreach (var segment in segments)
        {
            path = Join(path, segment);
            _lineByPath.TryAdd(path, line);
        }

        if (prefix.Length == 0 && segments.Count > 0)
        {
            var shape = segments.Count > 1 ? TomlShape.Table : ShapeOf(keyValue.Value);
            _rootShapes.TryAdd(segments[0], (shape, line));
        }

        AddKey(path, line, column);
        AddValue(path, keyValue.Value);
    }

    private void AddValue(string path, ValueSyntax? value)
    {
        switch (value)
        {
            case InlineTableSyntax table:
                foreach (var item in table.Items)
                {
                    if (item.KeyValue is { } keyValue)
                    {
                        AddKeyValue(path, keyValue);
                    }
                }

                break;
            case ArraySyntax array:
                var index = 0;
                foreach (var item in array.Items)
                {
                    if (item.Value is { } itemValue)
                    {
                        var itemPath = $"{path}[{index}]";
                        var (line, column) = Position(itemValue);
                        _lineByPath.TryAdd(itemPath, line);
                        AddKey(itemPath, line, column);
                        AddValue(itemPath, itemValue);
                    }

                    index++;
                }

                break;
        }
    }

    private void AddKey(string path, int line, int column)
    {
        if (!_keysByLine.TryGetValue(line, out var keys))
        {
            keys = [];
            _keysByLine[line] = keys;
        }

        keys.Add((column, path));
    }

    private static TomlShape ShapeOf(ValueSyntax? value) => value switch
    {
        InlineTableSyntax => TomlShape.Table,
        ArraySyntax array when array.Items.ChildrenCount > 0 && array.Items.All(i => i.Value is InlineTableSyntax) => TomlShape.ArrayOfTables,
        ArraySyntax => TomlShape.Array,
        _ => TomlShape.Scalar,
    };

    public static List<string> Segments(KeySyntax key)
    {
        var segments = new List<string> { Text(key.Key) };
        foreach (var dotted in key.DotKeys)
        {
            segments.Add(Text(dotted.Key));
        }

        return segments;
    }

    private static string Text(BareKeyOrStringValueSyntax? key) => key switch
    {
        BareKeySyntax bare => bare.Key?.Text ?? "",
        StringValueSyntax quoted => quoted.Value ?? "",
        _ => "",
    };

    // Tomlyn's positions are 0-based; errors speak the 1-based lines and columns editors show.
    private static (int Line, int Column) Position(SyntaxNode node) =>
        (node.Span.Start.Line + 1, node.Span.Start.Column + 1);

    private static string Join(string prefix, string segment) =>
        prefix.Length == 0 ? segment : $"{prefix}.{segment}";
}
