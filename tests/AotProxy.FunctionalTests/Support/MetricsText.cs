using System.Globalization;
using System.Text.RegularExpressions;

namespace AotProxy.FunctionalTests.Support;

internal static class MetricsText
{
    private static readonly string[] HistogramSuffixes = ["_bucket", "_sum", "_count"];

    // The value of one series, e.g. Value(text, "llm_gateway_tokens_total", "tenant=\"acme\"", "kind=\"prompt\"");
    // 0 when the series is absent.
    public static double Value(string text, string name, params string[] labels)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length <= name.Length || line[name.Length] is not ('{' or ' '))
            {
                continue;
            }

            if (labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    // Whether the exposition declares the metric a query names (its `# TYPE` line); a histogram's
    // series (NAME_bucket, NAME_sum, NAME_count) resolve to the histogram NAME.
    public static bool Exports(string text, string name) =>
        Declares(text, name, "")
        || HistogramSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal) && Declares(text, name[..^s.Length], "histogram"));

    private static bool Declares(string text, string name, string type) =>
        Regex.IsMatch(text, $"^# TYPE {Regex.Escape(name)} {type}", RegexOptions.Multiline);
}
