using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace AotProxy.Hosting.Parking;

// The session's input: the transport's reader, except that a read at a request boundary that
// stays idle past server.park_idle_after returns an empty completed result. Kestrel takes it as
// a client that closed between requests and ends its HTTP connection gracefully.
internal sealed class SessionInput(PipeReader transport, ParkingSession session) : PipeReader
{
    private ReadOnlySequence<byte> _last;
    private bool _consumedAll = true;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        // Kestrel reads for the next request without a token; with one, or with bytes it left
        // unconsumed, or a request (or its body) in progress, this is no boundary.
        var connection = session.Connection;
        if (session.Parking || cancellationToken.CanBeCanceled || !_consumedAll || !connection.AtBoundary)
        {
            var read = transport.ReadAsync(cancellationToken);
            return read.IsCompletedSuccessfully ? new ValueTask<ReadResult>(Track(read.Result)) : AwaitAsync(read);
        }

        var idle = connection.BeginIdle();
        var pending = transport.ReadAsync(idle);
        if (pending.IsCompletedSuccessfully)
        {
            connection.EndIdle();
            return new ValueTask<ReadResult>(Track(pending.Result));
        }

        return WaitAtBoundaryAsync(pending);
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

    public override void CancelPendingRead() => transport.CancelPendingRead();

    // Parking: Kestrel completing its reader is the end of its HTTP state, not of the socket's input.
    public override void Complete(Exception? exception = null)
    {
        if (!session.Parking)
        {
            transport.Complete(exception);
        }
    }

    private ReadResult Track(ReadResult result)
    {
        _last = result.Buffer;
        if (!result.Buffer.IsEmpty)
        {
            session.Connection.BytesArrived();
        }

        return result;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> AwaitAsync(ValueTask<ReadResult> read) => Track(await read.ConfigureAwait(false));

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> WaitAtBoundaryAsync(ValueTask<ReadResult> pending)
    {
        try
        {
            var result = await pending.ConfigureAwait(false);
            session.Connection.EndIdle();
            return Track(result);
        }
        catch (OperationCanceledException) when (!session.Connection.EndIdle())
        {
            // The heartbeat's cancel: no byte in idle_after. An empty, completed read ends
            // Kestrel's HTTP connection; the socket stays open in ConnectionParking.
            session.Parking = true;
            _last = default;
            return new ReadResult(default, isCanceled: false, isCompleted: true);
        }
    }
}
