using System.Buffers.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace AotProxy.Inspection;

// Whether Utf8JsonReader can turn JSON text into a string: valid UTF-8, and every \u escape of a
// surrogate paired (high, then low). GetString, CopyString and ValueTextEquals on an escaped value
// throw InvalidOperationException on anything else, and a client chooses those bytes: a lone
// "\ud800" in a JWT's kid or a request's model was a 500 with a stack trace (issue 14). Checking
// first keeps the readers' failures values. Works on a whole document (a JWT's header or claims,
// < 8 KiB) or on one token's raw ValueSpan; both scans are vectorized and skip text without a
// backslash at once.
internal static class JsonText
{
    // Whether ValueTextEquals can compare the property name the reader is on: an escaped one must
    // unescape to valid text, or the comparison throws (a lone surrogate, as in {"\ud800":1}). No
    // field the gateway reads has any other name, so such a key is skipped like any unknown one
    // (the worker sees the body unchanged).
    public static bool IsReadableName(ref Utf8JsonReader reader) =>
        !reader.ValueIsEscaped || IsValid(reader.ValueSpan);

    public static bool NameEquals(ref Utf8JsonReader reader, ReadOnlySpan<byte> name) =>
        IsReadableName(ref reader) && reader.ValueTextEquals(name);

    public static bool IsValid(ReadOnlySpan<byte> json)
    {
        if (!Utf8.IsValid(json))
        {
            return false;
        }

        var rest = json;
        while (true)
        {
            var at = rest.IndexOf((byte)'\\');
            if (at < 0)
            {
                return true;
            }

            rest = rest[at..];
            if (rest.Length < 2)
            {
                return false;
            }

            if (rest[1] != (byte)'u')
            {
                rest = rest[2..]; // \" \\ \/ \b \f \n \r \t: one byte each, never a surrogate
                continue;
            }

            if (!TryReadUnit(rest, out var unit) || char.IsLowSurrogate(unit))
            {
                return false;
            }

            rest = rest[6..];
            if (char.IsHighSurrogate(unit))
            {
                if (!TryReadUnit(rest, out var low) || !char.IsLowSurrogate(low))
                {
                    return false;
                }

                rest = rest[6..];
            }
        }
    }

    // `\uXXXX` at the start of text: the UTF-16 code unit it stands for.
    private static bool TryReadUnit(ReadOnlySpan<byte> text, out char unit)
    {
        unit = default;
        if (text.Length < 6 || text[0] != (byte)'\\' || text[1] != (byte)'u'
            || !Utf8Parser.TryParse(text.Slice(2, 4), out ushort value, out var consumed, 'x') || consumed != 4)
        {
            return false;
        }

        unit = (char)value;
        return true;
    }
}
