using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace AotProxy.Configuration;

// One pass of Tomlyn's lexer over a TOML document that follows its structure (headers, dotted
// keys, arrays, inline tables) without building a syntax tree: Tomlyn's tree takes ~50 times the
// text (700 MB for 100,000 [[tenants]]), this pass a few bytes per table header. It reports the
// table headers and the shape of each top-level name, and, when asked, the path and position of
// every key ("workers[1].url", "tenants[0].api_key_sha256[2]"), which only error messages need.
// Syntax it does not follow is a Problem: Tomlyn's own parser then says what is wrong.
internal sealed class TomlScanner
{
    // (path, 1-based line, 1-based column, isKey): every path written, prefixes of dotted keys
    // and headers included; isKey marks the one entry per key that a position can point at.
    internal delegate void PathVisitor(string path, int line, int column, bool isKey);

    private readonly string _text;
    private readonly TomlLexer _lexer;
    private readonly PathVisitor? _visit;
    private readonly Dictionary<string, int> _tableArrayCounts = new(StringComparer.Ordinal);
    private readonly HashSet<string> _tables = new(StringComparer.Ordinal);

    // The tokens of the key being read (reused: a key is consumed before the next one is read).
    private readonly List<TomlToken> _key = new(4);
    private TomlToken _token;

    private TomlScanner(string text, PathVisitor? visit)
    {
        _text = text;
        _visit = visit;
        _lexer = TomlLexer.Create(text);
    }

    // [table] and [[table]] headers in file order: 0-based line and top-level name.
    public List<(int Line, string Group)> Headers { get; } = [];

    // How each top-level name is first defined, with its 1-based line.
    public Dictionary<string, (TomlShape Shape, int Line)> RootShapes { get; } = new(StringComparer.Ordinal);

    // A [table] header that defines its table a second time: 1-based line and path.
    public List<(int Line, string Path)> Redefined { get; } = [];

    // The first place the scan could not follow (1-based line), or null.
    public (int Line, string Message)? Problem { get; private set; }

    public static TomlScanner Scan(string text, PathVisitor? visit = null)
    {
        var scanner = new TomlScanner(text, visit);
        scanner.Document();
        return scanner;
    }

    private void Document()
    {
        var table = "";
        while (Problem is null && Next(TomlLexerMode.Key))
        {
            switch (_token.Kind)
            {
                case TokenKind.OpenBracket:
                    table = Header(isArray: false) ?? table;
                    break;
                case TokenKind.OpenBracketDouble:
                    table = Header(isArray: true) ?? table;
                    break;
                case TokenKind.Eof:
                    return;
                default:
                    KeyValue(table);
                    break;
            }
        }
    }

    // After "[" or "[[": the key up to "]" or "]]". Returns the table's path, null on a problem.
    private string? Header(bool isArray)
    {
        var line = _token.Start.Line;
        if (!Next(TomlLexerMode.Key) || !Key(isArray ? TokenKind.CloseBracketDouble : TokenKind.CloseBracket))
        {
            return null;
        }

        var column = _key[0].Start.Column;
        var root = Name(_key[0]);
        var path = "";
        for (var i = 0; i < _key.Count; i++)
        {
            path = Join(path, i == 0 ? root : Name(_key[i]));
            var last = i == _key.Count - 1;
            if (i == 0)
            {
                RootShapes.TryAdd(root, (last && isArray ? TomlShape.ArrayOfTables : TomlShape.Table, line + 1));
            }

            if (last && isArray)
            {
                Visit(path, line, column, isKey: false);
                var index = _tableArrayCounts.GetValueOrDefault(path);
                _tableArrayCounts[path] = index + 1;
                path = $"{path}[{index}]";
            }
            else if (!last && _tableArrayCounts.TryGetValue(path, out var count))
            {
                // [workers.extra] after [[workers]] extends the latest workers element.
                Visit(path, line, column, isKey: false);
                path = $"{path}[{count - 1}]";
            }

            Visit(path, line, column, isKey: last);
        }

        Headers.Add((line, root));
        if (!isArray && !_tables.Add(path))
        {
            Redefined.Add((line + 1, path));
        }

        return path;
    }

    // A key (its first token is current), "=", and a value; under `table`. Paths are only
    // built for a visitor: the load itself needs the top-level names alone.
    private void KeyValue(string table)
    {
        if (!Key(TokenKind.Equal))
        {
            return;
        }

        var first = _key[0];
        var dotted = _key.Count > 1;
        var path = table;
        if (_visit is not null)
        {
            for (var i = 0; i < _key.Count; i++)
            {
                path = Join(path, Name(_key[i]));
                Visit(path, _key[i].Start.Line, first.Start.Column, isKey: i == _key.Count - 1);
            }
        }

        var shape = Value(path);
        if (table.Length == 0)
        {
            RootShapes.TryAdd(Name(first), (dotted ? TomlShape.Table : shape, first.Start.Line + 1));
        }
    }

    // The key's tokens from the current one up to `end` (consumed), into _key. False on a problem.
    private bool Key(TokenKind end)
    {
        _key.Clear();
        while (true)
        {
            if (_token.Kind is not (TokenKind.BasicKey or TokenKind.String or TokenKind.StringLiteral))
            {
                Fail("a key");
                return false;
            }

            _key.Add(_token);
            if (!Next(TomlLexerMode.Key))
            {
                return false;
            }

            if (_token.Kind == end)
            {
                return true;
            }

            if (_token.Kind != TokenKind.Dot || !Next(TomlLexerMode.Key))
            {
                Fail(end == TokenKind.Equal ? "'=' after a key" : "the end of the table header");
                return false;
            }
        }
    }

    // The value after "=" (or an array item): its shape, as TomlKeyMap reports root names.
    private TomlShape Value(string path)
    {
        if (!Next(TomlLexerMode.Value))
        {
            return TomlShape.Scalar;
        }

        return ValueFromCurrent(path);
    }

    private TomlShape ValueFromCurrent(string path)
    {
        switch (_token.Kind)
        {
            case TokenKind.OpenBracket:
                return Array(path);
            case TokenKind.OpenBrace:
                InlineTable(path);
                return TomlShape.Table;
            case TokenKind.Eof or TokenKind.Invalid or TokenKind.Equal or TokenKind.Comma or TokenKind.Dot
                or TokenKind.CloseBracket or TokenKind.CloseBracketDouble or TokenKind.CloseBrace
                or TokenKind.OpenBracketDouble or TokenKind.BasicKey:
                Fail("a value");
                return TomlShape.Scalar;
            default:
                return TomlShape.Scalar;
        }
    }

    // After "[": items up to "]". An array of tables when it holds only inline tables.
    private TomlShape Array(string path)
    {
        var items = 0;
        var tables = 0;
        while (Problem is null && Next(TomlLexerMode.Value))
        {
            if (_token.Kind == TokenKind.CloseBracket)
            {
                break;
            }

            var itemPath = _visit is null ? path : $"{path}[{items}]";
            Visit(itemPath, _token.Start.Line, _token.Start.Column, isKey: true);
            if (ValueFromCurrent(itemPath) == TomlShape.Table)
            {
                tables++;
            }

            items++;
            if (!Next(TomlLexerMode.Value) || _token.Kind == TokenKind.CloseBracket)
            {
                break;
            }

            if (_token.Kind != TokenKind.Comma)
            {
                Fail("',' or ']' in an array");
            }
        }

        return items > 0 && tables == items ? TomlShape.ArrayOfTables : TomlShape.Array;
    }

    // After "{": key = value pairs up to "}".
    private void InlineTable(string path)
    {
        while (Problem is null && Next(TomlLexerMode.Key))
        {
            if (_token.Kind == TokenKind.CloseBrace)
            {
                return;
            }

            KeyValue(path);
            if (Problem is not null || !Next(TomlLexerMode.Key) || _token.Kind == TokenKind.CloseBrace)
            {
                return;
            }

            if (_token.Kind != TokenKind.Comma)
            {
                Fail("',' or '}' in an inline table");
            }
        }
    }

    // The next token that is not whitespace, a comment or a line break, read in `mode`; false
    // (with a Problem) at the end of the text or on a lexer error.
    private bool Next(TomlLexerMode mode)
    {
        _lexer.Mode = mode;
        while (_lexer.MoveNext())
        {
            _token = _lexer.Current;
            if (_token.Kind is TokenKind.Whitespaces or TokenKind.Comment or TokenKind.NewLine)
            {
                continue;
            }

            if (_lexer.HasErrors || _token.Kind == TokenKind.Invalid)
            {
                Fail("valid TOML");
                return false;
            }

            return true;
        }

        _token = default;
        return false;
    }

    // A key segment's name: bare as written, quoted decoded by Tomlyn's own lexer (rare).
    private string Name(in TomlToken token)
    {
        var raw = _text.Substring(token.Start.Offset, token.Length);
        if (token.Kind == TokenKind.BasicKey)
        {
            return raw;
        }

        if (token.Kind == TokenKind.StringLiteral || !raw.Contains('\\', StringComparison.Ordinal))
        {
            return raw[1..^1];
        }

        var decoder = TomlLexer.Create(raw, new TomlLexerOptions { DecodeScalars = true });
        return decoder.MoveNext() && decoder.Current.StringValue is { } decoded ? decoded : raw[1..^1];
    }

    private void Visit(string path, int line, int column, bool isKey) => _visit?.Invoke(path, line + 1, column + 1, isKey);

    private void Fail(string expected) =>
        Problem ??= (_token.Start.Line + 1, _token.Kind == TokenKind.Eof ? $"expected {expected} before the end of the file" : $"expected {expected}");

    private static string Join(string prefix, string segment) =>
        prefix.Length == 0 ? segment : $"{prefix}.{segment}";
}
