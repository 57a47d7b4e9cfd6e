using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using AotProxy.Threading;

namespace AotProxy.Upstream;

// The PipeReader over one upstream connection: one pooled, contiguous buffer that reads go
// straight into (a socket ValueTask, no copy, no per-read object). It replaces StreamPipeReader,
// whose read state machine cost ≈220 B per request. The buffer goes back to the pool whenever
// everything in it has been consumed, and an empty reader waits for the socket to be readable
// (a zero-byte read) before it rents one, so neither an idle connection nor a stream waiting
// for its next token holds one (16 KiB per stream otherwise, perf/RESULTS.md issue 22).
internal sealed class ConnectionReader(Stream stream) : PipeReader
{
    // 16 KiB: a whole JSON answer or dozens of SSE events per read.
    private const int InitialSize = 16 * 1024;

    // The relay holds back at most an unfinished SSE event (1 MiB) or a response head (64 KiB).
    private const int MaxSize = 4 * 1024 * 1024;

    private readonly PooledWindow _window = new(InitialSize, MaxSize, "The worker sent more than the relay can hold back.");
    private bool _examinedAll = true;
    private bool _endOfStream;
    private bool _cancelNext;
    private bool _readable; // WaitAsync saw the socket readable: the next fill reads at once

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
        if (_window.Unconsumed.IsEmpty)
        {
            return;
        }

        _examinedAll = examined.GetInteger() >= _window.End;
        _window.ConsumeTo(consumed.GetInteger());
    }

    // Makes the next ReadAsync return IsCanceled (a read already waiting on the socket is ended
    // by its cancellation token instead).
    public override void CancelPendingRead() => _cancelNext = true;

    public override void Complete(Exception? exception = null) => _window.Return();

    public bool HoldsBuffer => _window.HoldsBuffer;

    // ReadAsync would wait on the socket (nothing unexamined, no buffer): a caller that awaits in
    // its own state machine anyway can wait with WaitAsync first, and the read then completes at
    // once, so a stream between two tokens keeps no reader's state machine box (perf/RESULTS.md,
    // issue 22, second pass).
    public bool WouldWait => _examinedAll && !_endOfStream && !_cancelNext && !_window.HoldsBuffer;

    // Completes when the socket is readable (or at its end): FillAsync's zero-byte read, done by the caller.
    public ValueTask<int> WaitAsync(CancellationToken cancellationToken)
    {
        _readable = true;
        return stream.ReadAsync(Memory<byte>.Empty, cancellationToken);
    }

    private ReadOnlySequence<byte> Unconsumed() => _window.Unconsumed;

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> FillAsync(CancellationToken cancellationToken)
    {
        if (!_window.HoldsBuffer && !_readable)
        {
            // Returns 0 once bytes are there (or at EOF, which the read below then reports).
            await stream.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        }

        _readable = false;

        var read = await stream.ReadAsync(_window.Free(), cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            _endOfStream = true;
        }

        _window.Filled(read);
        _examinedAll = false;
        return new ReadResult(Unconsumed(), false, _endOfStream);
    }
}
