using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Caching;

// A miss's answer as it goes to the client: the response body feature, wrapped for the request
// (ResponseCacheStage), copies every byte written through its PipeWriter as the client gets it
// (the forwarder's relay writes there: usage chunks it stripped are not in it), up to a limit.
// The forwarder is not touched; a hit replays what this kept. The copy goes to a pooled buffer.
internal sealed class ResponseRecorder : PipeWriter, IHttpResponseBodyFeature, IDisposable
{
    private readonly IHttpResponseBodyFeature _inner;
    private readonly PipeWriter _writer;
    private readonly long _limit;
    private byte[] _buffer = [];
    private int _length;
    private Memory<byte> _lent;

    public ResponseRecorder(IHttpResponseBodyFeature inner, long limit)
    {
        _inner = inner;
        _writer = inner.Writer;
        _limit = limit;
    }

    // More than the limit was written: the answer is not stored.
    public bool Overflowed { get; private set; }

    public ReadOnlySpan<byte> Recorded => _buffer.AsSpan(0, _length);

    public IHttpResponseBodyFeature Inner => _inner;

    Stream IHttpResponseBodyFeature.Stream => _inner.Stream;

    PipeWriter IHttpResponseBodyFeature.Writer => this;

    public override bool CanGetUnflushedBytes => _writer.CanGetUnflushedBytes;

    public override long UnflushedBytes => _writer.UnflushedBytes;

    public override void Advance(int bytes)
    {
        Record(_lent.Span[..bytes]);
        _lent = default;
        _writer.Advance(bytes);
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => _lent = _writer.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => (_lent = _writer.GetMemory(sizeHint)).Span;

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        Record(source.Span);
        return _writer.WriteAsync(source, cancellationToken);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => _writer.FlushAsync(cancellationToken);

    public override void CancelPendingFlush() => _writer.CancelPendingFlush();

    public override void Complete(Exception? exception = null) => _writer.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => _writer.CompleteAsync(exception);

    void IHttpResponseBodyFeature.DisableBuffering() => _inner.DisableBuffering();

    Task IHttpResponseBodyFeature.StartAsync(CancellationToken cancellationToken) => _inner.StartAsync(cancellationToken);

    Task IHttpResponseBodyFeature.SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken) =>
        _inner.SendFileAsync(path, offset, count, cancellationToken);

    Task IHttpResponseBodyFeature.CompleteAsync() => _inner.CompleteAsync();

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = [];
        _length = 0;
    }

    private void Record(ReadOnlySpan<byte> bytes)
    {
        if (Overflowed || bytes.IsEmpty)
        {
            return;
        }

        if (_length + (long)bytes.Length > _limit)
        {
            Overflowed = true;
            Dispose();
            return;
        }

        if (_length + bytes.Length > _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_length + bytes.Length, Math.Max(4096, _buffer.Length * 2)));
            _buffer.AsSpan(0, _length).CopyTo(larger);
            if (_buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = larger;
        }

        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }
}
