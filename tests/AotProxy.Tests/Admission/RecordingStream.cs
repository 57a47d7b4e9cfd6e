using System.Text;

namespace AotProxy.Tests.Admission;

// A response body that keeps what was written, readable from the test's thread while the
// request's flow writes.
internal sealed class RecordingStream : Stream
{
    private readonly Lock _lock = new();
    private readonly MemoryStream _written = new();

    public string Text
    {
        get
        {
            lock (_lock)
            {
                return Encoding.ASCII.GetString(_written.GetBuffer(), 0, (int)_written.Length);
            }
        }
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        lock (_lock)
        {
            _written.Write(buffer, offset, count);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            _written.Write(buffer.Span);
        }

        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
