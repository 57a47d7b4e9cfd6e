using System.Buffers;
using AotProxy.Hosting.Parking;
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

    // False once disposed (ProxyRequest gives it back at a response's first byte, or at its end).
    public bool HoldsBuffer => Volatile.Read(ref _array) is not null;

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
                    ParkableConnection.MarkBodyRead(request.HttpContext); // read to its end: the connection may park after this request
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
    // stream_options.include_usage (default: no edit); with maxTokens, a budget's cap replaces
    // max_tokens / max_completion_tokens or adds max_tokens (MaxTokensSplice); and with a
    // priority, `"priority":N` goes in before the root's closing brace (scheduler.engine_priority);
    // with a salt (TenantCacheSalt.Json), it replaces the client's cache_salt or is added (CacheSaltSplice);
    // with a served model (WorkerPool.ModelJson), it replaces the alias the client named (ModelSplice).
    public void Apply(UsageSplice usage, PrioritySplice prioritySplice, int? priority, MaxTokensSplice maxTokensSplice = default, int? maxTokens = null, CacheSaltSplice saltSplice = default, ReadOnlySpan<byte> salt = default, ModelSplice modelSplice = default, ReadOnlySpan<byte> model = default)
    {
        Span<byte> capScratch = stackalloc byte[MaxTokensSplice.MaxLength];
        scoped ReadOnlySpan<byte> capValue = default;
        scoped ReadOnlySpan<byte> capKey = default;
        if (maxTokens is { } cap)
        {
            if (maxTokensSplice.HasMaxTokens || maxTokensSplice.HasMaxCompletionTokens)
            {
                capValue = MaxTokensSplice.FormatValue(cap, capScratch);
            }
            else
            {
                capKey = maxTokensSplice.FormatKey(cap, prioritySplice.AfterProperty, capScratch);
            }
        }

        // After an added key, the next is never the object's first.
        Span<byte> saltScratch = stackalloc byte[CacheSaltSplice.MaxKeyLength];
        var saltKey = !salt.IsEmpty && !saltSplice.HasClientValue
            ? CacheSaltSplice.FormatKey(salt, prioritySplice.AfterProperty || !capKey.IsEmpty, saltScratch)
            : default;
        var saltValue = saltSplice.HasClientValue ? salt : default;
        Span<byte> scratch = stackalloc byte[PrioritySplice.MaxLength];
        var insert = priority is { } value
            ? (prioritySplice with { AfterProperty = prioritySplice.AfterProperty || !capKey.IsEmpty || !saltKey.IsEmpty }).Format(value, scratch)
            : default;

        // The edits inside the body, in source order (SpliceWriter goes forward only): the usage
        // splice and the replaced values, which never overlap; the closing-brace inserts come last.
        Span<(int Offset, int Remove, byte Kind)> edits = stackalloc (int, int, byte)[5];
        var count = 0;
        edits[count++] = (usage.Offset, usage.RemoveLength, 0);
        if (!capValue.IsEmpty && maxTokensSplice.HasMaxTokens)
        {
            edits[count++] = (maxTokensSplice.MaxTokensOffset, maxTokensSplice.MaxTokensLength, 1);
        }

        if (!capValue.IsEmpty && maxTokensSplice.HasMaxCompletionTokens)
        {
            edits[count++] = (maxTokensSplice.MaxCompletionTokensOffset, maxTokensSplice.MaxCompletionTokensLength, 1);
        }

        if (!saltValue.IsEmpty)
        {
            edits[count++] = (saltSplice.Offset, saltSplice.Length, 2);
        }

        if (!model.IsEmpty)
        {
            edits[count++] = (modelSplice.Offset, modelSplice.Length, 3);
        }

        edits[..count].Sort(static (a, b) => a.Offset.CompareTo(b.Offset));
        var newLength = Length + insert.Length + capKey.Length + saltKey.Length;
        foreach (var (_, remove, kind) in edits[..count])
        {
            newLength += EditInsert(kind, usage, capValue, saltValue, model).Length - remove;
        }

        var next = BufferPool.Shared.Rent(newLength);
        var writer = new SpliceWriter(Span, next);
        foreach (var (offset, remove, kind) in edits[..count])
        {
            writer.Splice(offset, remove, EditInsert(kind, usage, capValue, saltValue, model));
        }

        writer.Splice(prioritySplice.Offset, 0, capKey);
        writer.Splice(prioritySplice.Offset, 0, saltKey);
        writer.Splice(prioritySplice.Offset, 0, insert);
        var length = writer.Finish();
        BufferPool.Shared.Return(_array!);
        _array = next;
        Length = length;
    }

    // A multipart form (the audio endpoints) rewritten in one copy (MultipartForm.Write): the
    // served model in place of an alias, stream_include_usage on, a budget's cap.
    public void Apply(in MultipartForm form, bool includeUsage, int? cap, ReadOnlySpan<byte> model)
    {
        var next = BufferPool.Shared.Rent(Math.Max(1, form.Length(Span, includeUsage, cap, model)));
        var length = form.Write(Span, next, includeUsage, cap, model);
        BufferPool.Shared.Return(_array!);
        _array = next;
        Length = length;
    }

    private static ReadOnlySpan<byte> EditInsert(byte kind, UsageSplice usage, ReadOnlySpan<byte> capValue, ReadOnlySpan<byte> saltValue, ReadOnlySpan<byte> model) => kind switch
    {
        0 => usage.Insert,
        1 => capValue,
        2 => saltValue,
        _ => model,
    };

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _array, null) is { } array)
        {
            BufferPool.Shared.Return(array);
        }
    }
}
