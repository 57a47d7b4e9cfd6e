namespace AotProxy.Tests.Upstream;

// A socket's stream that counts its zero-byte reads (waits for readability) and passes every
// read through unchanged.
internal sealed class ZeroByteReadCountingStream(Stream inner) : Stream
{
    private int _zeroByteReads;

    public int ZeroByteReads => Volatile.Read(ref _zeroByteReads);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            Interlocked.Increment(ref _zeroByteReads);
        }

        return inner.ReadAsync(buffer, cancellationToken);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
