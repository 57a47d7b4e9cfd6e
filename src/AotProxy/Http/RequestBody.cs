using System.Buffers;
using System.IO.Pipelines;
using AotProxy.Inspection;
using AotProxy.Memory;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// A request body in one pooled array, read through the request's PipeReader and bounded by
// server.max_request_bytes. Dispose returns the array.
internal sealed class RequestBody : IDisposable
{
    private byte[]? _array;

    private RequestBody(byte[] array, int length)
    {
        _array = array;
        Length = length;
    }

    public int Length { get; private set; }

    public ReadOnlyMemory<byte> Memory => _array.AsMemory(0, Length);

    public ReadOnlySpan<byte> Span => _array.AsSpan(0, Length);

    // Null with tooLarge = true: over the limit. Null with tooLarge = false: the client went away.
    public static async ValueTask<(RequestBody? Body, bool TooLarge)> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength > maxBytes)
        {
            return (null, true);
        }

        var reader = request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (buffer.Length > maxBytes)
                {
                    reader.AdvanceTo(buffer.End);
                    return (null, true);
                }

                if (result.IsCanceled)
                {
                    return (null, false);
                }

                if (result.IsCompleted)
                {
                    var array = BufferPool.Shared.Rent(Math.Max(1, (int)buffer.Length));
                    buffer.CopyTo(array);
                    var body = new RequestBody(array, (int)buffer.Length);
                    reader.AdvanceTo(buffer.End);
                    return (body, false);
                }

                // Keep everything; ask for more.
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            return (null, false);
        }
    }

    // Rewrites the body into a new pooled array, in one copy: the usage splice turns on
    // stream_options.include_usage (default: no edit), and with a priority, `"priority":N` goes
    // in before the root's closing brace (scheduler.engine_priority).
    public void Apply(UsageSplice usage, PrioritySplice prioritySplice, int? priority)
    {
        Span<byte> scratch = stackalloc byte[PrioritySplice.MaxLength];
        var insert = priority is { } value ? prioritySplice.Format(value, scratch) : default;
        var next = BufferPool.Shared.Rent(usage.NewLength(Length) + insert.Length);
        var writer = new SpliceWriter(Span, next);
        writer.Splice(usage.Offset, usage.RemoveLength, usage.Insert);
        writer.Splice(prioritySplice.Offset, 0, insert);
        var length = writer.Finish();
        BufferPool.Shared.Return(_array!);
        _array = next;
        Length = length;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _array, null) is { } array)
        {
            BufferPool.Shared.Return(array);
        }
    }
}
