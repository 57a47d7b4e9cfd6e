using System.Buffers;
using System.Text;

namespace AotProxy.Upstream;

// Parses an HTTP/1.x status line and header block (RFC 9112) from bytes that may arrive in any
// number of pieces. Strict where a lenient reading would let a worker smuggle a second
// response (obs-fold, bare LF, conflicting lengths); nothing is decoded to strings here.
internal static class ResponseHeadParser
{
    private static ReadOnlySpan<byte> EndOfHead => "\r\n\r\n"u8;

    // Complete: `head` holds the parsed head and `consumed` is where the body starts.
    public static ParseStatus TryParse(in ReadOnlySequence<byte> buffer, ResponseHead head, out SequencePosition consumed)
    {
        consumed = buffer.Start;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> block, EndOfHead, advancePastDelimiter: false))
        {
            return buffer.Length > ResponseHead.MaxBytes ? ParseStatus.Invalid : ParseStatus.Incomplete;
        }

        if (block.Length + 2 > ResponseHead.MaxBytes)
        {
            return ParseStatus.Invalid;
        }

        // Keep the last header's CRLF so every line, status line included, ends in one.
        reader.Advance(EndOfHead.Length);
        consumed = reader.Position;
        var bytes = head.Load(buffer.Slice(0, block.Length + 2));
        return Parse(bytes, head) ? ParseStatus.Complete : ParseStatus.Invalid;
    }

    private static bool Parse(ReadOnlySpan<byte> bytes, ResponseHead head)
    {
        var lineEnd = bytes.IndexOf("\r\n"u8);
        if (!ParseStatusLine(bytes[..lineEnd], head))
        {
            return false;
        }

        var position = lineEnd + 2;
        while (position < bytes.Length)
        {
            var line = bytes[position..];
            lineEnd = line.IndexOf("\r\n"u8);
            if (!ParseHeader(line[..lineEnd], position, head))
            {
                return false;
            }

            position += lineEnd + 2;
        }

        if ((head.Chunked || head.OtherTransferCoding) && head.ContentLength >= 0)
        {
            // RFC 9112 §6.3: Transfer-Encoding wins, and the connection cannot be trusted afterwards.
            head.ContentLength = -1;
            head.ConnectionClose = true;
        }

        // A final coding other than chunked: the body runs until the worker closes.
        head.ConnectionClose |= head.OtherTransferCoding;

        return true;
    }

    // "HTTP/1.1 200 OK": version, a space, three digits, then nothing or a space and a reason.
    private static bool ParseStatusLine(ReadOnlySpan<byte> line, ResponseHead head)
    {
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[8] != (byte)' '
            || line[7] is not ((byte)'0' or (byte)'1')
            || !IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11])
            || (line.Length > 12 && line[12] != (byte)' ')
            || line[12..].IndexOfAny((byte)'\n', (byte)'\r', (byte)0) >= 0)
        {
            return false;
        }

        head.MinorVersion = line[7] - '0';
        head.StatusCode = ((line[9] - '0') * 100) + ((line[10] - '0') * 10) + (line[11] - '0');
        return head.StatusCode >= 100;
    }

    private static bool ParseHeader(ReadOnlySpan<byte> line, int offset, ResponseHead head)
    {
        var colon = line.IndexOf((byte)':');
        if (colon <= 0 || !IsToken(line[..colon]))
        {
            return false; // includes obs-fold: a line starting with whitespace has no token name
        }

        var valueStart = colon + 1;
        var valueEnd = line.Length;
        while (valueStart < valueEnd && line[valueStart] is (byte)' ' or (byte)'\t')
        {
            valueStart++;
        }

        while (valueEnd > valueStart && line[valueEnd - 1] is (byte)' ' or (byte)'\t')
        {
            valueEnd--;
        }

        var name = line[..colon];
        var value = line[valueStart..valueEnd];
        if (value.IndexOfAny((byte)'\n', (byte)'\r', (byte)0) >= 0)
        {
            return false;
        }

        if (Ascii.EqualsIgnoreCase(name, "content-length"u8))
        {
            if (!TryParseLength(value, out var length) || (head.ContentLength >= 0 && head.ContentLength != length))
            {
                return false;
            }

            head.ContentLength = length;
        }
        else if (Ascii.EqualsIgnoreCase(name, "transfer-encoding"u8))
        {
            // Only a final "chunked" frames the body; any other coding means "read until close".
            var last = value[(value.LastIndexOf((byte)',') + 1)..].Trim(" \t"u8);
            head.Chunked = Ascii.EqualsIgnoreCase(last, "chunked"u8);
            head.OtherTransferCoding = !head.Chunked;
        }
        else if (Ascii.EqualsIgnoreCase(name, "connection"u8))
        {
            head.ConnectionClose |= HasToken(value, "close"u8);
            head.ConnectionOptions |= NamesOtherHeaders(value);
        }
        else if (Ascii.EqualsIgnoreCase(name, "content-type"u8))
        {
            var semicolon = value.IndexOf((byte)';');
            var mediaType = (semicolon < 0 ? value : value[..semicolon]).TrimEnd(" \t"u8);
            head.IsEventStream = Ascii.EqualsIgnoreCase(mediaType, "text/event-stream"u8);
        }

        return head.TryAdd(new HeaderRange(offset, colon, offset + valueStart, valueEnd - valueStart));
    }

    private static bool TryParseLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty || value.Length > 18)
        {
            return false;
        }

        foreach (var b in value)
        {
            if (!IsDigit(b))
            {
                return false;
            }

            length = (length * 10) + (b - '0');
        }

        return true;
    }

    private static bool HasToken(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        foreach (var range in list.Split((byte)','))
        {
            if (Ascii.EqualsIgnoreCase(list[range].Trim(" \t"u8), token))
            {
                return true;
            }
        }

        return false;
    }

    // Connection options other than the two every server sends: header names (RFC 9110 §7.6.1).
    private static bool NamesOtherHeaders(ReadOnlySpan<byte> list)
    {
        foreach (var range in list.Split((byte)','))
        {
            var token = list[range].Trim(" \t"u8);
            if (!token.IsEmpty && !Ascii.EqualsIgnoreCase(token, "close"u8) && !Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    // RFC 9110 §5.6.2 tchar.
    private static bool IsToken(ReadOnlySpan<byte> name) =>
        name.IndexOfAnyExcept(TokenChars) < 0;

    private static readonly SearchValues<byte> TokenChars = SearchValues.Create(
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);
}
