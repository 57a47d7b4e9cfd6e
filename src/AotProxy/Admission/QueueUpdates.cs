using System.Buffers.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace AotProxy.Admission;

// A queued streaming request's opt-in progress (x-gateway-queue-updates: true): SSE comment lines
// `: queued position=N eta_ms=M\n\n`, which every SSE parser ignores, until it is admitted. The
// first one sends the 200 and the SSE head; from then on the response has started, so whatever
// follows (the worker's events, or the gateway's error) can only be events: OpenAiError writes a
// refusal as the terminal error event, and the forwarder relays the worker's body under this head.
// One per pooled ProxyRequest, used only by a request that asked: the path without the header
// allocates nothing for it.
internal sealed class QueueUpdates
{
    public const string Header = "x-gateway-queue-updates";

    // The contract's "at least once a second"; and how often the waiter looks at its position, so
    // a change shows within 100 ms (the position moves with grants, which come no faster than
    // requests finish).
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    // ": queued position=" + int + " eta_ms=" + long + "\n\n"
    private const int MaxLength = 18 + 11 + 8 + 20 + 2;

    private HttpContext? _context;

    // Streaming requests only: a JSON answer cannot carry comments before its body.
    public static bool Requested(HttpRequest request, bool stream) =>
        stream && request.Headers.TryGetValue(Header, out var value) && IsTrue(value);

    // The updates for this request's response (AdmissionStage, when it asked for them).
    public QueueUpdates For(HttpContext context)
    {
        _context = context;
        return this;
    }

    public void Reset() => _context = null;

    // The position and ETA now. A client gone makes the flush fail: its abort cancels the wait too.
    public async ValueTask WriteAsync(int position, long etaMs)
    {
        var context = _context!;
        var response = context.Response;
        if (!response.HasStarted)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
        }

        var writer = response.BodyWriter;
        writer.Advance(Format(writer.GetSpan(MaxLength), position, etaMs));
        try
        {
            await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The client left; the wait ends as Cancelled through its token.
        }
    }

    public static int Format(Span<byte> destination, int position, long etaMs)
    {
        ": queued position="u8.CopyTo(destination);
        var length = 18;
        Utf8Formatter.TryFormat(position, destination[length..], out var written);
        length += written;
        " eta_ms="u8.CopyTo(destination[length..]);
        length += 8;
        Utf8Formatter.TryFormat(etaMs, destination[length..], out written);
        length += written;
        "\n\n"u8.CopyTo(destination[length..]);
        return length + 2;
    }

    private static bool IsTrue(StringValues value) =>
        value.Count == 1 && string.Equals(value[0], "true", StringComparison.OrdinalIgnoreCase);
}
