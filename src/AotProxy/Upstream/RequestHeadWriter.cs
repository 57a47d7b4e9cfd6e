using System.Buffers.Text;
using System.Diagnostics;
using System.Net;
using System.Text;
using AotProxy.Forwarding;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Upstream;

// Writes the request head a worker receives: request line, Host, the client's end-to-end headers
// (HeaderPolicy drops hop-by-hop ones, those the client's Connection header names, the client's
// key, and forwarded headers from anyone but a trusted proxy), X-Forwarded-For with the peer
// appended, Content-Length, x-request-id, the worker's own Authorization and, with tracing on, the
// W3C trace context of the attempt's span in place of the client's. Straight into the send buffer:
// no strings, no header objects.
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
        string? authorization,
        IPAddress? peer,
        bool trustedProxy,
        Activity? trace = null)
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
        var connection = headers.Connection;
        foreach (var header in headers)
        {
            if (!HeaderPolicy.ForwardToUpstream(header.Key, trustedProxy) || (connection.Count > 0 && HeaderPolicy.IsNamedBy(connection, header.Key))
                || (trace is not null && HeaderPolicy.IsTraceContext(header.Key)))
            {
                continue;
            }

            hasContentType |= header.Key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase);
            foreach (var value in header.Value)
            {
                writer.Latin1(header.Key);
                writer.Bytes(": "u8);
                writer.Utf8(value);
                writer.Bytes("\r\n"u8);
            }
        }

        // X-Forwarded-For as nginx's $proxy_add_x_forwarded_for and Envoy write it: a trusted
        // proxy's list, then the peer. From anyone else the list could name any address: only
        // the peer goes on.
        if (peer is not null)
        {
            writer.Bytes("X-Forwarded-For: "u8);
            if (trustedProxy && !HeaderPolicy.IsNamedBy(connection, HeaderPolicy.ForwardedFor))
            {
                foreach (var value in headers[HeaderPolicy.ForwardedFor])
                {
                    if (!string.IsNullOrWhiteSpace(value))
                    {
                        writer.Utf8(value.Trim());
                        writer.Bytes(", "u8);
                    }
                }
            }

            writer.Address(peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4() : peer);
            writer.Bytes("\r\n"u8);
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

        // W3C trace context level 1, as the OTel SDK's propagator writes it: 00-{trace id}-{span id}-
        // {01 sampled, else 00} (Activity.Id would carry .NET's "random trace id" flag too); the
        // tracestate is the client's, carried on.
        if (trace is not null)
        {
            writer.Bytes("\r\ntraceparent: 00-"u8);
            writer.Latin1(trace.TraceId.ToHexString());
            writer.Bytes("-"u8);
            writer.Latin1(trace.SpanId.ToHexString());
            writer.Bytes(trace.Recorded ? "-01"u8 : "-00"u8);
            if (!string.IsNullOrEmpty(trace.TraceStateString))
            {
                writer.Bytes("\r\ntracestate: "u8);
                writer.Utf8(trace.TraceStateString);
            }
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

        // Header values as the client sent them: Kestrel decodes a non-ASCII value as UTF-8 (and
        // refuses invalid UTF-8), so encoding it as UTF-8 again gives back the client's bytes.
        public void Utf8(string? text)
        {
            if (string.IsNullOrEmpty(text) || Overflowed)
            {
                return;
            }

            if (Encoding.UTF8.TryGetBytes(text, _destination[Position..], out var written))
            {
                Position += written;
            }
            else
            {
                Overflowed = true;
            }
        }

        public void Address(IPAddress address)
        {
            if (!Overflowed && address.TryFormat(_destination[Position..], out var written))
            {
                Position += written;
            }
            else
            {
                Overflowed = true;
            }
        }

        // The request line's parts and header names, which Kestrel limits to ASCII.
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
