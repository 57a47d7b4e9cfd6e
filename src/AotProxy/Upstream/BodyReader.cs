using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using AotProxy.Threading;

namespace AotProxy.Upstream;

// One response body, read through the connection's pipe: the framing (Content-Length, chunked,
// until close) is removed here, so the relay sees only the body's bytes and a completed flag
// at its exact end. Content-Length bodies are slices of the connection's own buffers (no copy);
// chunked data is copied once into a pooled buffer without the framing.
internal sealed class BodyReader : PipeReader
{
    // The relay holds back an unfinished SSE event (up to 1 MiB); beyond that plus one read,
    // a worker is sending something other than what we can relay.
    private const int MaxDecodedBytes = 4 * 1024 * 1024;

    private PipeReader _inner = null!;
    private BodyFraming _framing;
    private long _remaining;
    private ReadOnlySequence<byte> _last;
    private ChunkedDecoder _chunked;
    private readonly PooledWindow _decoded = new(16 * 1024, MaxDecodedBytes, "The worker's chunked body outgrew the relay buffer.");
    private bool _examinedAll = true;
    private bool _innerCompleted;

    // The body was read to its framed end: the connection may carry another request.
    public bool IsComplete => _framing switch
    {
        BodyFraming.None => true,
        BodyFraming.ContentLength => _remaining == 0,
        BodyFraming.Chunked => _chunked.IsDone && _decoded.Start == _decoded.End,
        _ => false,
    };

    // The next ReadAsync would wait on the worker's socket (ConnectionReader.WouldWait): the relay
    // awaits WaitAsync first, in its own state machine, and the read then completes at once, so a
    // stream between two tokens holds neither this reader's box nor the connection reader's (432 B).
    public bool WouldWait => _inner is ConnectionReader { WouldWait: true } && _framing switch
    {
        BodyFraming.None => false,
        BodyFraming.Chunked => _examinedAll && !_chunked.IsDone && !_innerCompleted,
        BodyFraming.ContentLength => _remaining > 0,
        _ => true,
    };

    public ValueTask<int> WaitAsync(CancellationToken cancellationToken) => ((ConnectionReader)_inner).WaitAsync(cancellationToken);

    public void Start(PipeReader inner, BodyFraming framing, long contentLength)
    {
        Release();
        _inner = inner;
        _framing = framing;
        _remaining = framing == BodyFraming.ContentLength ? contentLength : 0;
        _chunked.Reset();
        _examinedAll = true;
        _innerCompleted = false;
        _last = default;
    }

    // Returns the chunked buffer to the pool (idle connections hold no buffer).
    public void Release() => _decoded.Return();

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        switch (_framing)
        {
            case BodyFraming.None:
                return new(new ReadResult(default, false, true));
            case BodyFraming.Chunked:
                return ReadChunkedAsync(cancellationToken);
            case BodyFraming.ContentLength when _remaining == 0:
                _last = default;
                return new(new ReadResult(default, false, true));
        }

        var pending = _inner.ReadAsync(cancellationToken);
        return pending.IsCompletedSuccessfully ? new(Frame(pending.Result)) : AwaitFramedAsync(pending);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (_framing == BodyFraming.Chunked)
        {
            result = new ReadResult(Decoded(), false, _chunked.IsDone);
            return !_examinedAll || _chunked.IsDone;
        }

        if (_framing == BodyFraming.None || (_framing == BodyFraming.ContentLength && _remaining == 0))
        {
            result = new ReadResult(default, false, true);
            return true;
        }

        if (_inner.TryRead(out var inner))
        {
            result = Frame(inner);
            return true;
        }

        result = default;
        return false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        switch (_framing)
        {
            case BodyFraming.None:
                return;
            case BodyFraming.Chunked:
                _examinedAll = examined.GetInteger() >= _decoded.End;
                _decoded.ConsumeTo(consumed.GetInteger());
                return;
            case BodyFraming.ContentLength:
                if (_last.IsEmpty)
                {
                    return;
                }

                _remaining -= _last.Slice(_last.Start, consumed).Length;
                break;
        }

        _last = default;
        _inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    // The connection owns the inner reader; completing a body completes nothing below it.
    public override void Complete(Exception? exception = null)
    {
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> AwaitFramedAsync(ValueTask<ReadResult> pending) => Frame(await pending.ConfigureAwait(false));

    private ReadResult Frame(ReadResult result)
    {
        var buffer = result.Buffer;
        if (result.IsCanceled)
        {
            _last = buffer.Slice(0, 0);
            return new ReadResult(_last, true, false);
        }

        if (_framing == BodyFraming.UntilClose)
        {
            _last = buffer;
            return result;
        }

        if (buffer.Length >= _remaining)
        {
            _last = buffer.Slice(0, _remaining);
            return new ReadResult(_last, false, true);
        }

        if (result.IsCompleted)
        {
            throw new IOException($"The worker closed the connection {_remaining} bytes before the end of the body.");
        }

        _last = buffer;
        return new ReadResult(buffer, false, false);
    }

    private ReadOnlySequence<byte> Decoded() => _decoded.Unconsumed;

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> ReadChunkedAsync(CancellationToken cancellationToken)
    {
        while (_examinedAll && !_chunked.IsDone)
        {
            if (_innerCompleted)
            {
                throw new IOException("The worker closed the connection in the middle of a chunked body.");
            }

            var result = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                _inner.AdvanceTo(result.Buffer.Start);
                return new ReadResult(Decoded(), true, false);
            }

            var before = _decoded.End;
            var buffer = result.Buffer;
            foreach (var segment in buffer)
            {
                DecodeSegment(segment.Span);
            }

            _innerCompleted = result.IsCompleted;
            _inner.AdvanceTo(buffer.End);
            if (_decoded.End > before)
            {
                _examinedAll = false;
            }
        }

        _examinedAll = false; // what follows is examined by the caller's AdvanceTo
        return new ReadResult(Decoded(), false, _chunked.IsDone);
    }

    private void DecodeSegment(ReadOnlySpan<byte> input)
    {
        while (!input.IsEmpty && !_chunked.IsDone)
        {
            _chunked.Decode(input, _decoded.Free().Span, out var read, out var written);
            if (_chunked.IsInvalid)
            {
                throw new UpstreamProtocolException("The worker sent an invalid chunked body.");
            }

            input = input[read..];
            _decoded.Filled(written);
        }
    }
}
