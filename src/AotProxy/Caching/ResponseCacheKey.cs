using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AotProxy.Http;

namespace AotProxy.Caching;

// Whether a request may be answered from the cache, and its key: SHA-256 (the first 128 bits)
// over the endpoint, the answer's form (JSON, an event stream, one with the usage chunk), the
// served model, the scope (the tenant, or its class with shared_response_cache) and the
// canonical body (CanonicalJson) without `stream`, `user` and stream_options' include_usage:
// what only shapes the answer's framing or names the end user is in the form or nowhere.
// Deterministic only: temperature 0 or a seed, n = 1, no tools (a tool call may have effects
// the cache would skip), no background Responses; embeddings always. One JsonDocument per
// opted-in request; nothing for the others.
internal static class ResponseCacheKey
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? _buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? _writer;

    // The endpoints it serves: what generates or embeds once per body, with usage in its answer.
    public static bool Serves(EndpointKind endpoint) => endpoint is EndpointKind.ChatCompletions or EndpointKind.Completions
        or EndpointKind.Embeddings or EndpointKind.Responses or EndpointKind.Messages;

    // null: not cacheable (not deterministic, or not a JSON object). The scope is the tenant's
    // name, or with sharedClass its class's; a prefix tells the two apart (a class and a tenant
    // may share a name), written into the key's bytes rather than a string built per request.
    public static UInt128? Of(ReadOnlySpan<byte> body, EndpointKind endpoint, byte form, string model, bool sharedClass, string scope)
    {
        if (!Serves(endpoint))
        {
            return null;
        }

        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(body);
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            return null;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !Deterministic(root, endpoint))
            {
                return null;
            }

            var buffer = _buffer ??= new ArrayBufferWriter<byte>(4096);
            buffer.ResetWrittenCount();
            var kind = sharedClass ? "class:"u8 : "tenant:"u8;
            var head = buffer.GetSpan(2 + Encoding.UTF8.GetMaxByteCount(model.Length + scope.Length) + kind.Length + 2);
            head[0] = (byte)endpoint;
            head[1] = form;
            var length = 2 + Encoding.UTF8.GetBytes(model, head[2..]);
            head[length++] = 0;
            kind.CopyTo(head[length..]);
            length += kind.Length;
            length += Encoding.UTF8.GetBytes(scope, head[length..]);
            head[length++] = 0;
            buffer.Advance(length);
            var writer = _writer ??= new Utf8JsonWriter(buffer);
            writer.Reset(buffer);
            WriteBody(writer, root);
            writer.Flush();
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(buffer.WrittenSpan, hash);
            if (buffer.Capacity > 1024 * 1024)
            {
                _buffer = null; // one huge body must not stay pinned to the thread
                _writer = null;
            }

            return BinaryPrimitives.ReadUInt128LittleEndian(hash);
        }
    }

    // temperature 0 or a fixed seed (vLLM's default temperature is 1: absent is sampled), one
    // choice, no tools or functions; a background Responses request answers with a queued stub.
    internal static bool Deterministic(JsonElement root, EndpointKind endpoint)
    {
        if (endpoint == EndpointKind.Embeddings)
        {
            return true;
        }

        var zeroTemperature = root.TryGetProperty("temperature", out var temperature) && temperature.ValueKind == JsonValueKind.Number && temperature.GetDouble() == 0;
        var seeded = root.TryGetProperty("seed", out var seed) && seed.ValueKind == JsonValueKind.Number;
        if (!zeroTemperature && !seeded)
        {
            return false;
        }

        if (root.TryGetProperty("n", out var n) && !(n.ValueKind == JsonValueKind.Number && n.TryGetInt32(out var choices) && choices == 1))
        {
            return false;
        }

        return !NonEmpty(root, "tools") && !NonEmpty(root, "functions")
            && !(root.TryGetProperty("background", out var background) && background.ValueKind == JsonValueKind.True);
    }

    private static bool NonEmpty(JsonElement root, string name) => root.TryGetProperty(name, out var value) && value.ValueKind switch
    {
        JsonValueKind.Null => false,
        JsonValueKind.Array => value.GetArrayLength() > 0,
        _ => true,
    };

    private static void WriteBody(Utf8JsonWriter writer, JsonElement root)
    {
        writer.WriteStartObject();
        CanonicalJson.WriteMembers(writer, root, static name => name is not ("stream" or "user" or "stream_options"));
        if (root.TryGetProperty("stream_options", out var options) && !(options.ValueKind == JsonValueKind.Object && OnlyIncludeUsage(options)))
        {
            // include_usage is in the form; anything else (vLLM's continuous_usage_stats) shapes the answer.
            writer.WritePropertyName("stream_options");
            if (options.ValueKind == JsonValueKind.Object)
            {
                writer.WriteStartObject();
                CanonicalJson.WriteMembers(writer, options, static name => name != "include_usage");
                writer.WriteEndObject();
            }
            else
            {
                CanonicalJson.Write(writer, options);
            }
        }

        writer.WriteEndObject();
    }

    private static bool OnlyIncludeUsage(JsonElement options)
    {
        foreach (var option in options.EnumerateObject())
        {
            if (option.Name != "include_usage")
            {
                return false;
            }
        }

        return true;
    }
}
