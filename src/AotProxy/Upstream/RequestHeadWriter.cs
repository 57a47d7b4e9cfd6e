using System.Buffers.Text;
using System.Text;
using AotProxy.Forwarding;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Upstream;

// Writes the request head a worker receives: request line, Host, the client's end-to-end headers
// (HeaderPolicy drops hop-by-hop ones and the client's key), Content-Length, x-request-id and
// the worker's own Authorization. Straight into the send buffer: no strings, no header objects.
internal static class RequestHeadWriter
{
    // Returns the head's length, or -1 when `destination` is too small (the caller retries bigger).
    public static int Write(
        Span<byte> destination,
        string method,
        UpstreamEndpoint endpoint,
        string path,
        string query,
        IHeaderDictionary headers,
        long contentLength,
        string requestId,
        string? authorization)
    {
        var writer = new Writer(destination);
        writer.Latin1(method);
        writer.Bytes(" "u8);
        writer.Bytes(endpoint.PathPrefix);
        writer.Latin1(path);
        writer.Latin1(query);
        writer.Bytes(" HTTP/1.1\r\nHost: "u8);
        writer.Bytes(endpoint.HostHeader);
        writer.Bytes("\r\nContent-Length: "u8);
        writer.Number(contentLength);
        writer.Bytes("\r\n"u8);

        var hasContentType = false;
        foreach (var header in headers)
        {
            if (!HeaderPolicy.ForwardToUpstream(header.Key))
            {
                continue;
            }

            hasContentType |= header.Key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase);
            foreach (var value in header.Value)
            {
                writer.Latin1(header.Key);
                writer.Bytes(": "u8);
                writer.Latin1(value);
                writer.Bytes("\r\n"u8);
            }
        }

        if (!hasContentType)
        {
            writer.Bytes("Content-Type: application/json\r\n"u8);
        }

        writer.Bytes("x-request-id: "u8);
        writer.Latin1(requestId);
        if (authorization is not null)
        {
            writer.Bytes("\r\nAuthorization: "u8);
            writer.Latin1(authorization);
        }

        writer.Bytes("\r\n\r\n"u8);
        return writer.Overflowed ? -1 : writer.Position;
    }

    private ref struct Writer(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;

        public int Position { get; private set; }

        public bool Overflowed { get; private set; }

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            if (!Overflowed && bytes.TryCopyTo(_destination[Position..]))
            {
                Position += bytes.Length;
            }
            else
            {
                Overflowed = true;
            }
        }

        // Header text from Kestrel is already limited to visible Latin-1 (CR and LF are rejected).
        public void Latin1(string? text)
        {
            if (string.IsNullOrEmpty(text) || Overflowed)
            {
                return;
            }

            if (text.Length > _destination.Length - Position)
            {
                Overflowed = true;
                return;
            }

            Position += Encoding.Latin1.GetBytes(text, _destination[Position..]);
        }

        public void Number(long value)
        {
            if (!Overflowed && Utf8Formatter.TryFormat(value, _destination[Position..], out var written))
            {
                Position += written;
            }
            else
            {
                Overflowed = true;
            }
        }
    }
}
