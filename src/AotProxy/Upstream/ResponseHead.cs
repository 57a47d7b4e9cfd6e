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

    // 16 (280 B): a vLLM or nginx head has 4-10 headers; a head with more rents twice the room.
    // Rented as the first header is parsed and given back by ReleaseHeaders and Clear, so neither a
    // stream past its first byte nor an idle pooled connection holds one: every upstream connection,
    // one per stream, held a 1.6 KiB HeaderRange[100] before branch stream22, and a 280 B one before
    // stream22b (perf/RESULTS.md, issue 22). Its own pool: like Memory/BufferPool, it keeps up to
    // 1,024 per size, only ever what was once in use at the same time.
    internal const int InitialHeaders = 16;

    private static readonly ArrayPool<HeaderRange> Pool = ArrayPool<HeaderRange>.Create(MaxHeaders, 1024);

    private HeaderRange[] _headers = [];
    private byte[] _bytes = [];

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

    // InitialHeaders, then twice the room, at most MaxHeaders; the pool may hand out a longer
    // array, of which only MaxHeaders are ever used.
    private void Grow()
    {
        var grown = Pool.Rent(_headers.Length == 0 ? InitialHeaders : Math.Min(_headers.Length * 2, MaxHeaders));
        _headers.AsSpan(0, HeaderCount).CopyTo(grown);
        ReturnHeaders();
        _headers = grown;
    }

    private void ReturnHeaders()
    {
        if (_headers.Length > 0)
        {
            Pool.Return(_headers);
            _headers = [];
        }
    }

    // Headers that fit before the next Grow: none after Clear or ReleaseHeaders.
    internal int Capacity => _headers.Length;

    // The headers went to the client and nothing will take them back (its body's first byte
    // followed them): the copy and the header array go back to their pools for the rest of a long
    // stream, which held them (256 + 280 B) between every two tokens (perf/RESULTS.md, issue 22,
    // second pass). The status and framing stay for the end of the response.
    public void ReleaseHeaders()
    {
        if (_bytes.Length > 0)
        {
            BufferPool.Shared.Return(_bytes);
            _bytes = [];
        }

        ReturnHeaders();
        Length = 0;
        HeaderCount = 0;
    }

    public void Clear()
    {
        ReleaseHeaders();
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
