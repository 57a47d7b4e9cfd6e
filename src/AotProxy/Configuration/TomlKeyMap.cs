namespace AotProxy.Configuration;

// Where each key of a TOML document is written, so that every error (syntax, type, validation,
// unknown key) can name its line. Paths look like "server.listen", "workers[1].url",
// "tenants[0]" (the [[tenants]] header) and "tenants[0].api_key_sha256[2]" (an array item).
// Building it keeps only what every load needs (table headers, top-level shapes): a key's line
// is found by scanning the text again (TomlScanner), which only errors need, so a file of
// 100,000 tenants costs no index of 600,000 paths. Ask for many lines at once (LinesOf).
internal sealed class TomlKeyMap
{
    private readonly string _text;
    private readonly TomlScanner _scan;

    private TomlKeyMap(string text, TomlScanner scan)
    {
        _text = text;
        _scan = scan;
    }

    // [table] and [[table]] headers in file order (0-based line, top-level name): what
    // ContiguousToml regroups.
    public IReadOnlyList<(int Line, string Group)> Headers => _scan.Headers;

    // [table] headers that define their table a second time (1-based line, path): invalid TOML
    // that Tomlyn's deserializer would merge silently.
    public IReadOnlyList<(int Line, string Path)> RedefinedTables => _scan.Redefined;

    // Where the scan could not follow the text (1-based line): the document has a syntax error,
    // which TomlDiagnostics.FirstSyntaxError words.
    public (int Line, string Message)? Problem => _scan.Problem;

    public static TomlKeyMap Build(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new TomlKeyMap(text, TomlScanner.Scan(text));
    }

    // The line of path, or of its nearest written ancestor (a missing key reports the line of
    // its table header); 0 when nothing on the way is written down.
    public int LineOf(string path) => LinesOf([path])[0];

    // LineOf for each path, in one scan of the text.
    public int[] LinesOf(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var wanted = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            for (var p = path; p.Length > 0 && wanted.TryAdd(p, 0); p = Parent(p))
            {
            }
        }

        if (wanted.Count > 0)
        {
            TomlScanner.Scan(_text, (path, line, _, _) =>
            {
                if (wanted.TryGetValue(path, out var found) && found == 0)
                {
                    wanted[path] = line;
                }
            });
        }

        var lines = new int[paths.Count];
        for (var i = 0; i < paths.Count; i++)
        {
            for (var p = paths[i]; p.Length > 0; p = Parent(p))
            {
                if (wanted.GetValueOrDefault(p) is > 0 and var line)
                {
                    lines[i] = line;
                    break;
                }
            }
        }

        return lines;
    }

    // Whether path itself is written in the document (no fallback to its ancestors).
    public bool Contains(string path)
    {
        var found = false;
        TomlScanner.Scan(_text, (written, _, _, _) => found |= string.Equals(written, path, StringComparison.Ordinal));
        return found;
    }

    // The key written at (line, column), "" when that line holds no key: the last key that
    // starts at or before the column (inline tables put several keys on one line).
    public string KeyAt(int line, int column)
    {
        string? first = null;
        string? best = null;
        TomlScanner.Scan(_text, (path, keyLine, keyColumn, isKey) =>
        {
            if (isKey && keyLine == line)
            {
                first ??= path;
                if (keyColumn <= column)
                {
                    best = path;
                }
            }
        });
        return best ?? first ?? "";
    }

    public bool TryGetRootShape(string name, out TomlShape shape, out int line)
    {
        var found = _scan.RootShapes.TryGetValue(name, out var entry);
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
}
