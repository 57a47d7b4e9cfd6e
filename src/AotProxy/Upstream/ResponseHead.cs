using System.Buffers;
using AotProxy.Memory;

namespace AotProxy.Upstream;

// One response's status line and headers, as the worker sent them. Names and values stay
// byte ranges into a pooled copy of the head, so a header is decoded only if it is forwarded.
// Reused for every response on its connection; Clear returns the copy (and a grown header
// array) to the pool.
internal sealed class ResponseHead
{
    // 64 KiB: far above any vLLM or nginx head (≈200 B), small enough to reject garbage early.
    public const int MaxBytes = 64 * 1024;
    public const int MaxHeaders = 100;

    // 16 (280 B): a vLLM or nginx head has 4-10 headers. A head with more rents a larger array,
    // which Clear gives back: every upstream connection, one per stream, held a 1.6 KiB
    // HeaderRange[100] before (perf/RESULTS.md, issue 22: memory per stream).
    internal const int InitialHeaders = 16;

    private readonly HeaderRange[] _initial = new HeaderRange[InitialHeaders];
    private HeaderRange[] _headers;
    private byte[] _bytes = [];

    public ResponseHead() => _headers = _initial;

    public int StatusCode { get; set; }

    public int MinorVersion { get; set; }

    public long ContentLength { get; set; } = -1;

    public bool Chunked { get; set; }

    public bool ConnectionClose { get; set; }

    // The Connection header names other headers, which are for the hop to the gateway only.
    public bool ConnectionOptions { get; set; }

    public bool IsEventStream { get; set; }

    public bool OtherTransferCoding { get; set; }

    public int HeaderCount { get; private set; }

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Bytes => _bytes.AsSpan(0, Length);

    public ReadOnlySpan<HeaderRange> Headers => _headers.AsSpan(0, HeaderCount);

    public BodyFraming Framing => StatusCode is 204 or 304 ? BodyFraming.None
        : Chunked ? BodyFraming.Chunked
        : ContentLength >= 0 ? BodyFraming.ContentLength
        : BodyFraming.UntilClose;

    // The worker keeps the connection open for another request.
    public bool KeepAlive => !ConnectionClose && MinorVersion >= 1 && Framing != BodyFraming.UntilClose;

    public ReadOnlySpan<byte> Name(in HeaderRange header) => Bytes.Slice(header.NameStart, header.NameLength);

    public ReadOnlySpan<byte> Value(in HeaderRange header) => Bytes.Slice(header.ValueStart, header.ValueLength);

    internal Span<byte> Load(in ReadOnlySequence<byte> head)
    {
        Clear();
        _bytes = BufferPool.Shared.Rent((int)head.Length);
        head.CopyTo(_bytes);
        Length = (int)head.Length;
        return _bytes.AsSpan(0, Length);
    }

    // False past MaxHeaders: the head is refused.
    internal bool TryAdd(HeaderRange header)
    {
        if (HeaderCount == MaxHeaders)
        {
            return false;
        }

        if (HeaderCount == _headers.Length)
        {
            Grow();
        }

        _headers[HeaderCount++] = header;
        return true;
    }

    // Twice the room, at most MaxHeaders; the pool may hand out a longer array, of which only
    // MaxHeaders are ever used.
    private void Grow()
    {
        var grown = ArrayPool<HeaderRange>.Shared.Rent(Math.Min(_headers.Length * 2, MaxHeaders));
        _headers.AsSpan(0, HeaderCount).CopyTo(grown);
        ReturnGrown();
        _headers = grown;
    }

    private void ReturnGrown()
    {
        if (!ReferenceEquals(_headers, _initial))
        {
            ArrayPool<HeaderRange>.Shared.Return(_headers);
            _headers = _initial;
        }
    }

    // Headers that fit before the next Grow: InitialHeaders again after Clear.
    internal int Capacity => _headers.Length;

    public void Clear()
    {
        if (_bytes.Length > 0)
        {
            BufferPool.Shared.Return(_bytes);
            _bytes = [];
        }

        ReturnGrown();
        Length = 0;
        HeaderCount = 0;
        StatusCode = 0;
        MinorVersion = 0;
        ContentLength = -1;
        Chunked = false;
        ConnectionClose = false;
        ConnectionOptions = false;
        IsEventStream = false;
        OtherTransferCoding = false;
    }
}
