using System.Globalization;

namespace AotProxy.FunctionalTests.Support;

// One executable (r-x) mapping of a process's own code, from /proc/PID/smaps: the mappings of its
// executable file, and the anonymous ones between them (code moved into huge pages at startup,
// src/AotProxy.Hosting/HotText.cs).
internal sealed record CodeMapping(ulong Start, ulong End, ulong Offset, string Path)
{
    public long RssKiB { get; init; }

    public long AnonHugeKiB { get; init; }

    public bool Anonymous => Path.Length == 0;

    public static List<CodeMapping> Read(int pid)
    {
        var executable = new FileInfo($"/proc/{pid}/exe").LinkTarget!;
        var all = new List<(CodeMapping Mapping, bool Code)>();
        foreach (var line in File.ReadLines($"/proc/{pid}/smaps"))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 5 && fields[0].Contains('-', StringComparison.Ordinal) && !fields[0].EndsWith(':'))
            {
                var range = fields[0].Split('-');
                all.Add((new CodeMapping(Hex(range[0]), Hex(range[1]), Hex(fields[2]), fields.Length >= 6 ? fields[5] : ""), fields[1].Contains('x', StringComparison.Ordinal)));
            }
            else if (all.Count > 0 && fields[0] is "Rss:" or "AnonHugePages:")
            {
                var kib = long.Parse(fields[1], CultureInfo.InvariantCulture);
                var mapping = fields[0] == "Rss:" ? all[^1].Mapping with { RssKiB = kib } : all[^1].Mapping with { AnonHugeKiB = kib };
                all[^1] = (mapping, all[^1].Code);
            }
        }

        var file = all.Where(m => m.Mapping.Path == executable).ToList();
        var (low, high) = (file.Min(m => m.Mapping.Start), file.Max(m => m.Mapping.End));
        return all.Where(m => m.Code && m.Mapping.Start >= low && m.Mapping.End <= high).Select(m => m.Mapping).ToList();
    }

    private static ulong Hex(string text) => ulong.Parse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
