using System.IO.Pipelines;

namespace AotProxy.Hosting.Parking;

// The session's output: the transport's writer, except that completing it while the session
// parks leaves the socket open (Kestrel completes its output whenever its HTTP connection ends).
internal sealed class SessionOutput(PipeWriter transport, ParkingSession session) : PipeWriter
{
    public override bool CanGetUnflushedBytes => transport.CanGetUnflushedBytes;

    public override long UnflushedBytes => transport.UnflushedBytes;

    public override void Advance(int bytes) => transport.Advance(bytes);

    public override Memory<byte> GetMemory(int sizeHint = 0) => transport.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => transport.GetSpan(sizeHint);

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => transport.FlushAsync(cancellationToken);

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) => transport.WriteAsync(source, cancellationToken);

    public override void CancelPendingFlush() => transport.CancelPendingFlush();

    public override void Complete(Exception? exception = null)
    {
        if (!session.Parking)
        {
            transport.Complete(exception);
        }
    }
}
