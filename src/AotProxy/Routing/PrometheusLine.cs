using System.Globalization;
using System.Text;

namespace AotProxy.Routing;

// One line of the Prometheus text exposition format (version 0.0.4), as prometheus_client and
// Go's expfmt read it:  name [{label="value",...}] value [timestamp]
// The name, the value and the raw label set come out. Labels are checked for shape here and read
// only on demand (PrometheusLabels), since the vLLM reader looks at a label in a handful of its
// 579 lines; a backslash in a label value escapes whatever byte follows, so quotes, braces and
// blanks inside values never end the label set early.
internal static class PrometheusLine
{
    private const NumberStyles ValueStyle = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;

    public static PrometheusLineKind Parse(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> name, out double value) =>
        Parse(line, out name, out _, out value);

    // `line` excludes its '\n'; a trailing '\r' (CRLF bodies) is tolerated. `labels` is what lies
    // between the braces, escapes and all (empty without a label set), for PrometheusLabels.
    public static PrometheusLineKind Parse(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> labels, out double value)
    {
        name = default;
        labels = default;
        value = 0;
        var end = line.Length;
        while (end > 0 && IsBlankOrCr(line[end - 1]))
        {
            end--;
        }

        line = line[..end];
        var i = SkipBlanks(line, 0);
        if (i == line.Length || line[i] == (byte)'#')
        {
            return PrometheusLineKind.Ignored;
        }

        if (!IsNameStart(line[i]))
        {
            return PrometheusLineKind.Invalid;
        }

        var nameStart = i++;
        while (i < line.Length && IsNameChar(line[i]))
        {
            i++;
        }

        name = line[nameStart..i];
        var afterName = i;
        i = SkipBlanks(line, i);
        if (i < line.Length && line[i] == (byte)'{')
        {
            var labelsStart = i + 1;
            i = SkipLabels(line, labelsStart);
            if (i < 0)
            {
                return PrometheusLineKind.Invalid;
            }

            labels = line[labelsStart..(i - 1)];
            i = SkipBlanks(line, i);
        }
        else if (i == afterName)
        {
            return PrometheusLineKind.Invalid; // "name-1": no blank between name and value
        }

        var valueStart = i;
        i = SkipToken(line, i);
        if (!TryParseValue(line[valueStart..i], out value))
        {
            return PrometheusLineKind.Invalid;
        }

        i = SkipBlanks(line, i);
        if (i == line.Length)
        {
            return PrometheusLineKind.Sample;
        }

        // An optional timestamp in milliseconds; prometheus_client never writes one, others may.
        var timestampStart = i;
        i = SkipToken(line, i);
        return IsTimestamp(line[timestampStart..i]) && SkipBlanks(line, i) == line.Length
            ? PrometheusLineKind.Sample
            : PrometheusLineKind.Invalid;
    }

    // prometheus_client writes NaN, +Inf and -Inf; Go's ParseFloat, which Prometheus uses, also
    // takes any case and a bare Inf.
    public static bool TryParseValue(ReadOnlySpan<byte> token, out double value)
    {
        value = 0;
        if (token.IsEmpty)
        {
            return false;
        }

        if (token.Length <= 4)
        {
            if (Ascii.EqualsIgnoreCase(token, "NaN"u8))
            {
                value = double.NaN;
                return true;
            }

            if (Ascii.EqualsIgnoreCase(token, "+Inf"u8) || Ascii.EqualsIgnoreCase(token, "Inf"u8))
            {
                value = double.PositiveInfinity;
                return true;
            }

            if (Ascii.EqualsIgnoreCase(token, "-Inf"u8))
            {
                value = double.NegativeInfinity;
                return true;
            }
        }

        var first = token[0];
        return (IsDigit(first) || first is (byte)'+' or (byte)'-' or (byte)'.')
            && double.TryParse(token, ValueStyle, NumberFormatInfo.InvariantInfo, out value);
    }

    // Returns the index after the closing '}', or -1. `i` is just after the '{'. A trailing
    // comma before '}' is allowed, as in Go's parser.
    private static int SkipLabels(ReadOnlySpan<byte> line, int i)
    {
        while (true)
        {
            i = SkipBlanks(line, i);
            if (i == line.Length)
            {
                return -1;
            }

            if (line[i] == (byte)'}')
            {
                return i + 1;
            }

            if (!IsLabelNameStart(line[i]))
            {
                return -1;
            }

            i++;
            while (i < line.Length && IsLabelNameChar(line[i]))
            {
                i++;
            }

            i = SkipBlanks(line, i);
            if (i == line.Length || line[i] != (byte)'=')
            {
                return -1;
            }

            i = SkipBlanks(line, i + 1);
            if (i == line.Length || line[i] != (byte)'"')
            {
                return -1;
            }

            i = SkipQuoted(line, i + 1);
            if (i < 0)
            {
                return -1;
            }

            i = SkipBlanks(line, i);
            if (i == line.Length)
            {
                return -1;
            }

            if (line[i] == (byte)',')
            {
                i++;
            }
            else if (line[i] != (byte)'}')
            {
                return -1;
            }
        }
    }

    // `i` is just after the opening quote; returns the index after the closing one, or -1.
    internal static int SkipQuoted(ReadOnlySpan<byte> line, int i)
    {
        while (true)
        {
            var rest = line[i..];
            var stop = rest.IndexOfAny((byte)'"', (byte)'\\');
            if (stop < 0)
            {
                return -1;
            }

            if (rest[stop] == (byte)'"')
            {
                return i + stop + 1;
            }

            // A backslash: the next byte is escaped, whatever it is.
            i += stop + 2;
            if (i > line.Length)
            {
                return -1;
            }
        }
    }

    private static bool IsTimestamp(ReadOnlySpan<byte> token)
    {
        if (!token.IsEmpty && token[0] == (byte)'-')
        {
            token = token[1..];
        }

        return !token.IsEmpty && token.Length <= 19 && !token.ContainsAnyExceptInRange((byte)'0', (byte)'9');
    }

    internal static int SkipBlanks(ReadOnlySpan<byte> line, int i)
    {
        while (i < line.Length && line[i] is (byte)' ' or (byte)'\t')
        {
            i++;
        }

        return i;
    }

    private static int SkipToken(ReadOnlySpan<byte> line, int i)
    {
        while (i < line.Length && line[i] is not ((byte)' ' or (byte)'\t'))
        {
            i++;
        }

        return i;
    }

    private static bool IsBlankOrCr(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r';

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static bool IsLabelNameStart(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a' || b == (byte)'_';

    private static bool IsLabelNameChar(byte b) => IsLabelNameStart(b) || IsDigit(b);

    private static bool IsNameStart(byte b) => IsLabelNameStart(b) || b == (byte)':';

    private static bool IsNameChar(byte b) => IsNameStart(b) || IsDigit(b);
}
