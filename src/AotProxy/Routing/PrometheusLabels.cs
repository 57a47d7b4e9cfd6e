using System.Globalization;

namespace AotProxy.Routing;

// Reads labels out of a label set as PrometheusLine.Parse hands it over (the bytes between the
// braces, already checked for shape), in place: values stay escaped, and comparisons unescape
// as they go, so nothing is copied or allocated.
internal static class PrometheusLabels
{
    // Names match whole: block_size is neither _block_size_resolved nor user_specified_block_size,
    // all three of which sit in vLLM 0.19.1's cache_config_info. A name inside another label's
    // value (foo="model_name=\"x\"") is never mistaken for a label.
    public static bool TryFind(ReadOnlySpan<byte> labels, ReadOnlySpan<byte> name, out ReadOnlySpan<byte> escapedValue)
    {
        escapedValue = default;
        var i = 0;
        while (true)
        {
            i = PrometheusLine.SkipBlanks(labels, i);
            if (i == labels.Length)
            {
                return false;
            }

            var nameStart = i;
            while (i < labels.Length && labels[i] is not ((byte)'=' or (byte)' ' or (byte)'\t'))
            {
                i++;
            }

            var labelName = labels[nameStart..i];
            i = PrometheusLine.SkipBlanks(labels, i);
            if (i == labels.Length || labels[i] != (byte)'=')
            {
                return false;
            }

            i = PrometheusLine.SkipBlanks(labels, i + 1);
            if (i == labels.Length || labels[i] != (byte)'"')
            {
                return false;
            }

            var valueStart = i + 1;
            i = PrometheusLine.SkipQuoted(labels, valueStart);
            if (i < 0)
            {
                return false;
            }

            if (labelName.SequenceEqual(name))
            {
                escapedValue = labels[valueStart..(i - 1)];
                return true;
            }

            i = PrometheusLine.SkipBlanks(labels, i);
            if (i < labels.Length && labels[i] == (byte)',')
            {
                i++;
            }
        }
    }

    // Compares a value as it stands in the text with the string it stands for. The text format
    // escapes three bytes in label values: \\ \" and \n. Any other backslash is kept as it is,
    // backslash and all, as Prometheus' own parser does (textparse's lvalReplacer).
    public static bool ValueEquals(ReadOnlySpan<byte> escapedValue, ReadOnlySpan<byte> value)
    {
        var escape = escapedValue.IndexOf((byte)'\\');
        if (escape < 0)
        {
            return escapedValue.SequenceEqual(value);
        }

        if (!escapedValue[..escape].SequenceEqual(value[..Math.Min(escape, value.Length)]))
        {
            return false;
        }

        var j = escape;
        for (var i = escape; i < escapedValue.Length; i++)
        {
            var b = escapedValue[i];
            if (b == (byte)'\\' && i + 1 < escapedValue.Length)
            {
                var unescaped = escapedValue[i + 1] switch
                {
                    (byte)'\\' => (byte)'\\',
                    (byte)'"' => (byte)'"',
                    (byte)'n' => (byte)'\n',
                    _ => (byte)0,
                };
                if (unescaped != 0)
                {
                    b = unescaped;
                    i++;
                }
            }

            if (j == value.Length || value[j] != b)
            {
                return false;
            }

            j++;
        }

        return j == value.Length;
    }

    // A count such as num_gpu_blocks="7975": digits only, so "None" (vLLM before its memory
    // profiling has run), "-1" and "1e3" are not counts.
    public static bool TryParseCount(ReadOnlySpan<byte> escapedValue, out long count) =>
        long.TryParse(escapedValue, NumberStyles.None, NumberFormatInfo.InvariantInfo, out count);
}
