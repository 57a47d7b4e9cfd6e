using System.Buffers.Text;
using System.Text;

namespace AotProxy.Inspection;

// One forward pass over a multipart/form-data body (RFC 7578, RFC 2046 §5.1.1), in place: the
// boundary is found with a vectorised IndexOf, each part's headers are read for its
// Content-Disposition name, and the parts the gateway reads are kept as ranges (MultipartForm).
// Nothing is allocated. Strict as the python-multipart parser behind vLLM's form is: lines end in
// CRLF, and the form must close with "--boundary--".
internal static class MultipartFormScanner
{
    // RFC 2046: a boundary is 1 to 70 characters.
    public const int MaxBoundaryLength = 70;

    // A part's header block: 8 KiB, as Kestrel's default request line. An upload's parts have a
    // Content-Disposition and a Content-Type, a few hundred bytes.
    public const int MaxPartHeaderBytes = 8 * 1024;

    // Each part costs a header scan; a form of the audio API has under ten.
    public const int MaxParts = 1000;

    // Why a body is no form the gateway forwards; null: it is one. Each is the 400's message.
    public static string? Scan(ReadOnlySpan<byte> body, ReadOnlySpan<byte> boundary, out MultipartForm form)
    {
        form = default;
        if (boundary.IsEmpty || boundary.Length > MaxBoundaryLength)
        {
            return "the Content-Type has no boundary of 1 to 70 characters";
        }

        Span<byte> delimiter = stackalloc byte[MaxBoundaryLength + 4];
        "\r\n--"u8.CopyTo(delimiter);
        boundary.CopyTo(delimiter[4..]);
        delimiter = delimiter[..(boundary.Length + 4)];

        // The first delimiter may open the body, or follow a preamble and its CRLF.
        var position = body.StartsWith(delimiter[2..]) ? 0 : Find(body, delimiter, 0) is var first and >= 0 ? first + 2 : -1;
        if (position < 0)
        {
            return "no part opens with the boundary the Content-Type names";
        }

        var boundaryRange = (position + 2)..(position + 2 + boundary.Length);
        position += delimiter.Length - 2;
        var model = default(Range?);
        var file = default(Range?);
        Range includeUsage = default, maxCompletionTokens = default, responseFormat = default, language = default;
        bool stream = false, includeUsageValue = false, hasIncludeUsage = false;
        int? maxTokens = null;
        for (var parts = 0; ; parts++)
        {
            // After a delimiter: "--" closes the form; else optional padding, then CRLF and a part.
            if (body[position..].StartsWith("--"u8))
            {
                break;
            }

            if (parts == MaxParts)
            {
                return $"it has more than {MaxParts} parts";
            }

            position = SkipPadding(body, position);
            if (!body[position..].StartsWith("\r\n"u8))
            {
                return "a boundary line does not end in CRLF";
            }

            position += 2;
            var headers = HeaderBlock(body[position..], out var headerLength);
            if (headerLength < 0)
            {
                return body.Length - position > MaxPartHeaderBytes
                    ? $"a part's headers are longer than {MaxPartHeaderBytes} bytes"
                    : "a part's headers do not end in an empty line";
            }

            var contentStart = position + headerLength;
            var end = Find(body, delimiter, contentStart - 2);
            if (end < 0)
            {
                return "it does not close with the boundary (\"--boundary--\")";
            }

            var content = contentStart..Math.Max(contentStart, end);
            var name = PartName(headers);
            if (name.SequenceEqual("model"u8))
            {
                model = content;
            }
            else if (name.SequenceEqual("file"u8))
            {
                file = content;
            }
            else if (name.SequenceEqual("stream"u8))
            {
                if (!TryReadBool(body[content], out stream))
                {
                    return "'stream' is not a boolean";
                }
            }
            else if (name.SequenceEqual("stream_include_usage"u8))
            {
                if (!TryReadBool(body[content], out includeUsageValue))
                {
                    return "'stream_include_usage' is not a boolean";
                }

                (includeUsage, hasIncludeUsage) = (content, true);
            }
            else if (name.SequenceEqual("max_completion_tokens"u8))
            {
                if (!Utf8Parser.TryParse(body[content], out int value, out var used) || used != body[content].Length || value < 0)
                {
                    return "'max_completion_tokens' is not a whole number";
                }

                (maxCompletionTokens, maxTokens) = (content, value);
            }
            else if (name.SequenceEqual("response_format"u8))
            {
                responseFormat = content;
            }
            else if (name.SequenceEqual("language"u8))
            {
                language = content;
            }

            position = end + delimiter.Length;
        }

        if (model is not { } modelRange)
        {
            return "it has no 'model' part";
        }

        if (file is not { } fileRange)
        {
            return "it has no 'file' part (the audio)";
        }

        form = new MultipartForm(boundaryRange, position - delimiter.Length, modelRange, fileRange, includeUsage, maxCompletionTokens, responseFormat, language, stream, includeUsageValue, hasIncludeUsage, maxTokens);
        return null;
    }

    // multipart/form-data; boundary=X (or "X", quoted), from the request's Content-Type, as ASCII
    // bytes into destination; the bytes written, 0 when there is none.
    public static int Boundary(string? contentType, Span<byte> destination)
    {
        var value = contentType.AsSpan();
        var semicolon = value.IndexOf(';');
        if (semicolon < 0 || !value[..semicolon].Trim().Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            return 0;
        }

        foreach (var range in value[(semicolon + 1)..].Split(';'))
        {
            var parameter = value[(semicolon + 1)..][range].Trim();
            if (!parameter.StartsWith("boundary=", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var boundary = parameter[9..];
            if (boundary.Length >= 2 && boundary[0] == '"' && boundary[^1] == '"')
            {
                boundary = boundary[1..^1];
            }

            return boundary.Length is > 0 and <= MaxBoundaryLength && Ascii.IsValid(boundary) && destination.Length >= boundary.Length
                ? Encoding.ASCII.GetBytes(boundary, destination)
                : 0;
        }

        return 0;
    }

    // The next delimiter at or after start: CRLF "--" boundary, then "--" (the close) or optional
    // padding and CRLF. The same bytes followed by anything else are the content's (RFC 2046 lets
    // a body hold the boundary's prefix: "--boundaryX" is not a delimiter of "boundary").
    private static int Find(ReadOnlySpan<byte> body, ReadOnlySpan<byte> delimiter, int start)
    {
        while (start <= body.Length - delimiter.Length)
        {
            var found = body[start..].IndexOf(delimiter);
            if (found < 0)
            {
                return -1;
            }

            var at = start + found;
            var after = at + delimiter.Length;
            if (body[after..].StartsWith("--"u8) || body[SkipPadding(body, after)..].StartsWith("\r\n"u8))
            {
                return at;
            }

            start = at + 1;
        }

        return -1;
    }

    private static int SkipPadding(ReadOnlySpan<byte> body, int position)
    {
        while (position < body.Length && body[position] is (byte)' ' or (byte)'\t')
        {
            position++;
        }

        return position;
    }

    // The part's header lines (without the empty line that ends them); length: how far the
    // content starts from here, -1 when the empty line is not within MaxPartHeaderBytes.
    private static ReadOnlySpan<byte> HeaderBlock(ReadOnlySpan<byte> part, out int length)
    {
        if (part.StartsWith("\r\n"u8))
        {
            length = 2; // no headers at all
            return default;
        }

        var window = part[..Math.Min(part.Length, MaxPartHeaderBytes)];
        var end = window.IndexOf("\r\n\r\n"u8);
        length = end < 0 ? -1 : end + 4;
        return end < 0 ? default : part[..end];
    }

    // The `name` parameter of the part's Content-Disposition: form-data header; empty: none.
    private static ReadOnlySpan<byte> PartName(ReadOnlySpan<byte> headers)
    {
        foreach (var line in headers.Split("\r\n"u8))
        {
            var header = headers[line];
            var colon = header.IndexOf((byte)':');
            if (colon < 0 || !Ascii.EqualsIgnoreCase(header[..colon].Trim((byte)' '), "content-disposition"u8))
            {
                continue;
            }

            var value = header[(colon + 1)..];
            foreach (var range in value.Split((byte)';'))
            {
                var parameter = value[range].Trim(" \t"u8);
                var equals = parameter.IndexOf((byte)'=');
                if (equals < 0 || !Ascii.EqualsIgnoreCase(parameter[..equals].Trim(" \t"u8), "name"u8))
                {
                    continue;
                }

                var name = parameter[(equals + 1)..].Trim(" \t"u8);
                return name.Length >= 2 && name[0] == '"' && name[^1] == '"' ? name[1..^1] : name;
            }
        }

        return default;
    }

    // Pydantic's bool from a form field: true/false, 1/0, yes/no, on/off, t/f, y/n, any case.
    private static bool TryReadBool(ReadOnlySpan<byte> text, out bool value)
    {
        text = text.Trim(" \t"u8);
        value = Ascii.EqualsIgnoreCase(text, "true"u8) || text.SequenceEqual("1"u8) || Ascii.EqualsIgnoreCase(text, "yes"u8)
            || Ascii.EqualsIgnoreCase(text, "on"u8) || Ascii.EqualsIgnoreCase(text, "t"u8) || Ascii.EqualsIgnoreCase(text, "y"u8);
        return value || Ascii.EqualsIgnoreCase(text, "false"u8) || text.SequenceEqual("0"u8) || Ascii.EqualsIgnoreCase(text, "no"u8)
            || Ascii.EqualsIgnoreCase(text, "off"u8) || Ascii.EqualsIgnoreCase(text, "f"u8) || Ascii.EqualsIgnoreCase(text, "n"u8);
    }
}
