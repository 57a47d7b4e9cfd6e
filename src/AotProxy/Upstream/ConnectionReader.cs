using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using AotProxy.Threading;

namespace AotProxy.Upstream;

// The PipeReader over one upstream connection: one pooled, contiguous buffer that reads go
// straight into (a socket ValueTask, no copy, no per-read object). It replaces StreamPipeReader,
// whose read state machine cost ≈220 B per request. The buffer goes back to the pool whenever
// everything in it has been consumed, so an idle connection holds none.
internal sealed class ConnectionReader(Stream stream) : PipeReader
{
    // 16 KiB: a whole JSON answer or dozens of SSE events per read.
    private const int InitialSize = 16 * 1024;
    private const int MinReadSize = 2048;

    // The relay holds back at most an unfinished SSE event (1 MiB) or a response head (64 KiB).
    private const int MaxSize = 4 * 1024 * 1024;

    private byte[]? _buffer;
    private int _start;
    private int _end;
    private bool _examinedAll = true;
    private bool _endOfStream;
    private bool _cancelNext;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_cancelNext)
        {
            _cancelNext = false;
            return new(new ReadResult(Unconsumed(), true, false));
        }

        return !_examinedAll || _endOfStream
            ? new(new ReadResult(Unconsumed(), false, _endOfStream))
            : FillAsync(cancellationToken);
    }

    public override bool TryRead(out ReadResult result)
    {
        result = new ReadResult(Unconsumed(), false, _endOfStream);
        return !_examinedAll || _endOfStream;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_buffer is null)
        {
            return;
        }

        _start = consumed.GetInteger();
        _examinedAll = examined.GetInteger() >= _end;
        if (_start == _end)
        {
            ReturnBuffer();
        }
    }

    // Makes the next ReadAsync return IsCanceled (a read already waiting on the socket is ended
    // by its cancellation token instead).
    public override void CancelPendingRead() => _cancelNext = true;

    public override void Complete(Exception? exception = null) => ReturnBuffer();

    private ReadOnlySequence<byte> Unconsumed() =>
        _buffer is null ? default : new ReadOnlySequence<byte>(_buffer, _start, _end - _start);

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> FillAsync(CancellationToken cancellationToken)
    {
        var space = Space();
        var read = await stream.ReadAsync(space, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            _endOfStream = true;
        }

        _end += read;
        _examinedAll = false;
        return new ReadResult(Unconsumed(), false, _endOfStream);
    }

    private Memory<byte> Space()
    {
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
            _start = _end = 0;
        }
        else if (_buffer.Length - _end < MinReadSize)
        {
            var pending = _end - _start;
            var target = _buffer;
            if (pending + MinReadSize > _buffer.Length)
            {
                if (_buffer.Length * 2 > MaxSize)
                {
                    throw new UpstreamProtocolException("The worker sent more than the relay can hold back.");
                }

                target = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            }

            _buffer.AsSpan(_start, pending).CopyTo(target);
            if (!ReferenceEquals(target, _buffer))
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = target;
            }

            _start = 0;
            _end = pending;
        }

        return _buffer.AsMemory(_end);
    }

    private void ReturnBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _start = _end = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
