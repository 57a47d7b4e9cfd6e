using System.Globalization;

namespace AotProxy.FunctionalTests.Support;

internal static class MetricsText
{
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
}
