using System.Text;

namespace AotProxy.FunctionalTests.Support;

// Reads an OTLP ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1) into spans:
// ResourceSpans(1: resource, 2: scope_spans) > ScopeSpans(2: spans) > Span(1 trace_id, 2 span_id,
// 4 parent_span_id, 5 name, 6 kind, 9 attributes, 11 events, 15 status). AnyValue: 1 string,
// 2 bool, 3 int (long), 4 double.
internal static class OtlpTraceReader
{
    public static List<OtlpSpan> Read(ReadOnlySpan<byte> request)
    {
        var spans = new List<OtlpSpan>();
        var reader = new ProtoReader(request);
        while (reader.TryReadTag(out var field, out var wire))
        {
            if (field == 1 && wire == 2)
            {
                ReadResourceSpans(reader.ReadBytes(), spans);
            }
            else
            {
                reader.Skip(wire);
            }
        }

        return spans;
    }

    private static void ReadResourceSpans(ReadOnlySpan<byte> data, List<OtlpSpan> spans)
    {
        var service = string.Empty;
        var scopes = new List<byte[]>();
        var reader = new ProtoReader(data);
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 2):
                    // Resource: 1 = attributes.
                    var attributes = new Dictionary<string, object>();
                    var resource = new ProtoReader(reader.ReadBytes());
                    while (resource.TryReadTag(out var f, out var w))
                    {
                        if (f == 1 && w == 2)
                        {
                            ReadKeyValue(resource.ReadBytes(), attributes);
                        }
                        else
                        {
                            resource.Skip(w);
                        }
                    }

                    service = attributes.TryGetValue("service.name", out var name) ? (string)name : string.Empty;
                    break;
                case (2, 2):
                    scopes.Add(reader.ReadBytes().ToArray());
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }

        foreach (var scope in scopes)
        {
            var scopeReader = new ProtoReader(scope);
            while (scopeReader.TryReadTag(out var field, out var wire))
            {
                if (field == 2 && wire == 2)
                {
                    spans.Add(ReadSpan(scopeReader.ReadBytes(), service));
                }
                else
                {
                    scopeReader.Skip(wire);
                }
            }
        }
    }

    private static OtlpSpan ReadSpan(ReadOnlySpan<byte> data, string service)
    {
        string traceId = string.Empty, spanId = string.Empty, parent = string.Empty, name = string.Empty;
        var kind = 0;
        var status = 0;
        var attributes = new Dictionary<string, object>();
        var events = new List<OtlpEvent>();
        var reader = new ProtoReader(data);
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 2): traceId = Convert.ToHexStringLower(reader.ReadBytes()); break;
                case (2, 2): spanId = Convert.ToHexStringLower(reader.ReadBytes()); break;
                case (4, 2): parent = Convert.ToHexStringLower(reader.ReadBytes()); break;
                case (5, 2): name = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                case (6, 0): kind = (int)reader.ReadVarint(); break;
                case (9, 2): ReadKeyValue(reader.ReadBytes(), attributes); break;
                case (11, 2): events.Add(ReadEvent(reader.ReadBytes())); break;
                case (15, 2): status = ReadStatus(reader.ReadBytes()); break;
                default: reader.Skip(wire); break;
            }
        }

        return new OtlpSpan(service, traceId, spanId, parent, name, kind, attributes, events, status);
    }

    private static OtlpEvent ReadEvent(ReadOnlySpan<byte> data)
    {
        var name = string.Empty;
        var attributes = new Dictionary<string, object>();
        var reader = new ProtoReader(data);
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (2, 2): name = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                case (3, 2): ReadKeyValue(reader.ReadBytes(), attributes); break;
                default: reader.Skip(wire); break;
            }
        }

        return new OtlpEvent(name, attributes);
    }

    // Status: 3 = code (0 unset, 1 ok, 2 error).
    private static int ReadStatus(ReadOnlySpan<byte> data)
    {
        var code = 0;
        var reader = new ProtoReader(data);
        while (reader.TryReadTag(out var field, out var wire))
        {
            if (field == 3 && wire == 0)
            {
                code = (int)reader.ReadVarint();
            }
            else
            {
                reader.Skip(wire);
            }
        }

        return code;
    }

    private static void ReadKeyValue(ReadOnlySpan<byte> data, Dictionary<string, object> into)
    {
        var key = string.Empty;
        object value = string.Empty;
        var reader = new ProtoReader(data);
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 2): key = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                case (2, 2): value = ReadAnyValue(reader.ReadBytes()); break;
                default: reader.Skip(wire); break;
            }
        }

        into[key] = value;
    }

    private static object ReadAnyValue(ReadOnlySpan<byte> data)
    {
        var reader = new ProtoReader(data);
        object value = string.Empty;
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 2): value = Encoding.UTF8.GetString(reader.ReadBytes()); break;
                case (2, 0): value = reader.ReadVarint() != 0; break;
                case (3, 0): value = (long)reader.ReadVarint(); break;
                case (4, 1): value = BitConverter.UInt64BitsToDouble(reader.ReadFixed64()); break;
                default: reader.Skip(wire); break;
            }
        }

        return value;
    }
}
