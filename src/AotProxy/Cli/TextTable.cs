namespace AotProxy.Cli;

// The CLI's tables for people: columns two spaces apart, each as wide as its widest cell; the
// first column left-aligned, the others left or right (numbers) as the caller says.
internal static class TextTable
{
    public static void Write(TextWriter output, IReadOnlyList<string[]> lines, Func<int, bool> rightAligned)
    {
        var widths = new int[lines.Count == 0 ? 0 : lines.Max(l => l.Length)];
        foreach (var line in lines)
        {
            for (var i = 0; i < line.Length; i++)
            {
                widths[i] = Math.Max(widths[i], line[i].Length);
            }
        }

        foreach (var line in lines)
        {
            output.WriteLine(string.Join("  ", line.Select((cell, i) => i > 0 && rightAligned(i) ? cell.PadLeft(widths[i]) : cell.PadRight(widths[i]))).TrimEnd());
        }
    }
}
