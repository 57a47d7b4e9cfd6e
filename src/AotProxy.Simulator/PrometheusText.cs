using System.Globalization;
using System.Text;

namespace AotProxy.Simulator;

// Prometheus text exposition as Python's prometheus_client writes it, quirks included, because
// consumers of real vLLM must parse exactly this: "0.0" not "0", and Go-style exponents
// ("1.777757996204056e+09", even "3.110516736e+010") for values with more than six integer digits.
internal static class PrometheusText
{
    public static void Family(StringBuilder text, string name, string help, string type)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    // labels: already formatted and sorted by name, as prometheus_client emits them; may be empty.
    public static void Sample(StringBuilder text, string name, string labels, double value)
    {
        text.Append(name);
        if (labels.Length > 0)
        {
            text.Append('{').Append(labels).Append('}');
        }

        text.Append(' ').Append(FormatValue(value)).Append('\n');
    }

    public static string Label(string name, string value) => $"{name}=\"{EscapeLabelValue(value)}\"";

    public static string EscapeLabelValue(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal);

    // prometheus_client's floatToGoString over Python's repr(float).
    public static string FormatValue(double value)
    {
        if (double.IsPositiveInfinity(value))
        {
            return "+Inf";
        }

        if (double.IsNegativeInfinity(value))
        {
            return "-Inf";
        }

        if (double.IsNaN(value))
        {
            return "NaN";
        }

        var repr = PythonRepr(value);
        var dot = repr.IndexOf('.', StringComparison.Ordinal);
        if (value > 0 && dot > 6)
        {
            var mantissa = string.Concat(repr.AsSpan(0, 1), ".", repr.AsSpan(1, dot - 1), repr.AsSpan(dot + 1)).TrimEnd('0', '.');
            return $"{mantissa}e+0{dot - 1}";
        }

        return repr;
    }

    // Shortest round-trip digits, like both runtimes; Python writes "1.0" and "1e-05" where .NET
    // writes "1" and "1E-05".
    private static string PythonRepr(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        var e = text.IndexOf('E', StringComparison.Ordinal);
        if (e >= 0)
        {
            var exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            return string.Create(CultureInfo.InvariantCulture, $"{text.AsSpan(0, e)}e{(exponent < 0 ? '-' : '+')}{Math.Abs(exponent):00}");
        }

        return text.Contains('.', StringComparison.Ordinal) ? text : text + ".0";
    }
}
