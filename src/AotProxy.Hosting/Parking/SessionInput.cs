using System.Buffers;
using System.IO.Pipelines;

namespace AotProxy.Hosting.Parking;

// The session's input: the transport's reader, except that a read at a request boundary that
// stays idle past server.park_idle_after returns an empty completed result (ParkableConnection).
// Kestrel takes it as a client that closed between requests and ends its connection gracefully;
// from then on this reader passes nothing on: the transport's read is the parked wait's.
internal sealed class SessionInput(PipeReader transport, ParkingSession session) : PipeReader
{
    private static readonly ReadResult Ended = new(default, isCanceled: false, isCompleted: true);
    private ReadOnlySequence<byte> _last;
    private bool _consumedAll = true;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (session.Parking)
        {
            return new ValueTask<ReadResult>(Ended);
        }

        var read = transport.ReadAsync(cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            return new ValueTask<ReadResult>(Track(read.Result));
        }

        // Kestrel reads for the next request without a token; with one, or with bytes it left
        // unconsumed, or a request (or its body) in progress, this is no boundary.
        var connection = session.Connection;
        return connection.WaitAsync(read, this, !cancellationToken.CanBeCanceled && _consumedAll && connection.AtBoundary);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (session.Parking || !transport.TryRead(out result))
        {
            result = default;
            return false;
        }

        result = Track(result);
        return true;
    }

    // After the parking read there is nothing of the transport's to advance.
    public override void AdvanceTo(SequencePosition consumed)
    {
        if (session.Parking)
        {
            return;
        }

        _consumedAll = _last.Slice(consumed).IsEmpty;
        transport.AdvanceTo(consumed);
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (session.Parking)
        {
            return;
        }

        _consumedAll = _last.Slice(consumed).IsEmpty;
        transport.AdvanceTo(consumed, examined);
    }

    // Parking: a cancel from Kestrel ending its connection must not wake the parked wait.
    public override void CancelPendingRead()
    {
        if (!session.Parking)
        {
            transport.CancelPendingRead();
        }
    }

    // Parking: Kestrel completing its reader is the end of its HTTP state, not of the socket's input.
    public override void Complete(Exception? exception = null)
    {
        if (!session.Parking)
        {
            transport.Complete(exception);
        }
    }

    internal ReadResult Track(ReadResult result)
    {
        _last = result.Buffer;
        if (!result.Buffer.IsEmpty)
        {
            session.Connection.BytesArrived();
        }

        return result;
    }
}
