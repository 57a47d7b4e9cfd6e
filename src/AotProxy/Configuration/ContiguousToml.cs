using System.Text;

namespace AotProxy.Configuration;

// Tomlyn 2.10.2's deserializer reads tables as a stream and mishandles a table that is
// reopened after another one: "[server] ... [[workers]] ... [server.tls]" silently replaces
// everything read for [server], and "[[workers]] [server] [[workers]]" fails with "Duplicate
// key 'workers'", although both are valid TOML. So before binding, the table sections are
// regrouped by their top-level name, keeping their relative order (which is all TOML gives
// meaning to: "[workers.x]" applies to the [[workers]] above it, and that order is kept).
// Whole lines move, so columns stay valid, and OriginalLine maps an error back to the file.
internal sealed class ContiguousToml
{
    // (first line in Text, first line in the original, line count), all 1-based.
    private readonly List<(int Start, int OriginalStart, int Count)> _chunks;

    private ContiguousToml(string text, List<(int Start, int OriginalStart, int Count)> chunks)
    {
        Text = text;
        _chunks = chunks;
    }

    public string Text { get; }

    // headers: TomlKeyMap.Headers, every table header's 0-based line and top-level name.
    public static ContiguousToml Create(string text, IReadOnlyList<(int Line, string Group)> headers)
    {
        var order = Enumerable.Range(0, headers.Count)
            .GroupBy(i => headers[i].Group, StringComparer.Ordinal)
            .SelectMany(g => g)
            .ToList();
        if (order.SequenceEqual(Enumerable.Range(0, headers.Count)))
        {
            return new ContiguousToml(text, []);
        }

        var lineStarts = LineStarts(text);
        var lineCount = lineStarts.Count;
        var builder = new StringBuilder(text.Length + headers.Count);
        var chunks = new List<(int Start, int OriginalStart, int Count)>();
        var nextLine = 1;

        void Append(int firstLine, int endLine) // 0-based, end exclusive
        {
            if (endLine <= firstLine)
            {
                return;
            }

            var from = lineStarts[firstLine];
            var to = endLine < lineCount ? lineStarts[endLine] : text.Length;
            builder.Append(text, from, to - from);
            if (builder.Length > 0 && builder[^1] != '\n')
            {
                builder.Append('\n'); // the file's last line, now followed by another section
            }

            chunks.Add((nextLine, firstLine + 1, endLine - firstLine));
            nextLine += endLine - firstLine;
        }

        Append(0, headers.Count > 0 ? headers[0].Line : lineCount);
        foreach (var i in order)
        {
            Append(headers[i].Line, i + 1 < headers.Count ? headers[i + 1].Line : lineCount);
        }

        return new ContiguousToml(builder.ToString(), chunks);
    }

    public int OriginalLine(int line)
    {
        foreach (var (start, originalStart, count) in _chunks)
        {
            if (line >= start && line < start + count)
            {
                return originalStart + (line - start);
            }
        }

        return _chunks.Count == 0 ? line : 0;
    }

    private static List<int> LineStarts(string text)
    {
        var starts = new List<int> { 0 };
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n' && i + 1 < text.Length)
            {
                starts.Add(i + 1);
            }
        }

        return starts;
    }
}
