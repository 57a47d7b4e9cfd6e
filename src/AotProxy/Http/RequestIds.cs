using System.Buffers.Binary;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

internal static class RequestIds
{
    // The client's own x-request-id when it sent a sane one, else a new one. Either way it goes
    // on the response and upstream (vLLM uses it as its request id, so logs line up).
    public static string Ensure(HttpContext context)
    {
        var sent = context.Request.Headers["x-request-id"];
        var id = sent.Count == 1 && sent[0] is { Length: > 0 and <= 128 } value && IsPrintable(value)
            ? value
            : NewId();
        context.Response.Headers["x-request-id"] = id;
        return id;
    }

    // 32 hex digits, like a GUID in "N" form: a random prefix drawn once per process, then a
    // counter. Unique across restarts (the prefix) without a random-number syscall per request
    // (Guid.NewGuid reads the kernel's generator: one syscall each, see perf/RESULTS.md). The
    // prefix's digits are written once; the counter's by Convert.TryToHexStringLower over its
    // big-endian bytes, not UInt64.TryFormat, which reads the culture's number format on every
    // call: data a lone request on a cold core would fetch again (perf/RESULTS.md, "time to first
    // token, fourth pass"; RequestIdsBenchmarks).
    private static readonly string Prefix = ((ulong)Random.Shared.NextInt64()).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    private static long _next;

    internal static string NewId() =>
        string.Create(32, (ulong)Interlocked.Increment(ref _next), static (span, counter) =>
        {
            Prefix.CopyTo(span);
            Span<byte> bytes = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64BigEndian(bytes, counter);
            Convert.TryToHexStringLower(bytes, span[16..], out _);
        });

    private static bool IsPrintable(string value)
    {
        foreach (var c in value)
        {
            if (c is < (char)0x21 or > (char)0x7e)
            {
                return false;
            }
        }

        return true;
    }
}
