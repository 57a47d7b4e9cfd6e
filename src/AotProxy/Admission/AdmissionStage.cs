using System.Runtime.CompilerServices;
using AotProxy.Http;
using AotProxy.Ledger;
using AotProxy.Threading;
using AotProxy.Tracing;

namespace AotProxy.Admission;

// The admit stage: the class as [[time_windows]] active now make it, the priority the request is
// admitted with, and admission proper (AdmissionController): straight on with a free slot and
// nobody waiting, else a place in the queue until the scheduler grants one; a queued stream that
// asked (x-gateway-queue-updates) hears its position meanwhile (QueueUpdates). Fair share charges
// the reservation's prompt. A refusal is a value (ProxyRequest.Failure); Http/ProxyErrors writes the 503.
internal sealed class AdmissionStage(AdmissionController admissions, TimeProvider time)
{
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<bool> AdmitAsync(ProxyRequest request)
    {
        var caller = request.Caller;
        var snapshot = request.Snapshot;

        // [[time_windows]] active now change the class's priority, weight or buckets. A trusted
        // x-priority is a per-request decision by the proxy in front and outranks a window;
        // without one, the request takes the class's priority as the windows leave it.
        var classModel = snapshot.ClassOverrides.Apply(caller.Class, time);
        var priority = caller.PriorityFromHeader ? caller.Priority : classModel.Priority;
        request.Class = classModel;
        request.Priority = priority;

        TraceSpan.Event(request.Trace, TraceNames.QueueStartEvent);
        var admission = await admissions.AdmitAsync(
            request.Pool!, caller.Tenant, classModel, priority, request.Reservation.Prompt, request.Reservation.Completion, request.Context.RequestAborted, Updates(request)).ConfigureAwait(false);
        request.QueueWait = admission.Waited;
        TraceSpan.Tag(request.Trace, TraceNames.QueueMs, admission.Waited.TotalMilliseconds);
        if (!Take(request, admission))
        {
            return false;
        }

        if (classModel.Preemptible)
        {
            admission.Lease.Register(request.Preemption, classModel.Priority, classModel);
        }

        TraceSpan.Event(request.Trace, TraceNames.AdmittedEvent);
        return true;
    }

    // Preempted before its first byte (ForwarderError.Preempted): its slot, and the worker slot its
    // attempt kept (ForwardingStage), go to the waiter it was preempted for, and it waits again at the head of its queue, for one more attempt, with
    // its limits and fair-share charge as they were taken the first time. Not preemptible again.
    // A stream that asked for queue updates hears its position again while it waits (its SSE head
    // went out with the first comment, or with none: then the first comment sends it).
    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<bool> RequeueAsync(ProxyRequest request)
    {
        var lease = request.Lease;
        request.Lease = default;
        request.Streamed.End(); // nothing was relayed
        request.Failure = ProxyFailure.None;
        var admission = await lease.RequeueAsync(request.Preemption, request.Class!, request.Priority, ref request.Slot, Updates(request), request.Context.RequestAborted).ConfigureAwait(false);
        request.Preemption.Requeued();
        request.QueueWait += admission.Waited;
        return Take(request, admission);
    }

    // Where a queued stream reports its position (x-gateway-queue-updates); null: it did not ask.
    private static QueueUpdates? Updates(ProxyRequest request) =>
        QueueUpdates.Requested(request.Context.Request, request.Inspected.Stream) ? request.QueueUpdates.For(request.Context) : null;

    // The outcome of a wait: the lease and slot, or the refusal as a value.
    private static bool Take(ProxyRequest request, in AdmissionResult admission)
    {
        request.Decision = admission.Decision;
        request.Outcome = LedgerOutcome.Of(admission.Decision);
        if (!admission.IsAdmitted)
        {
            request.Failure = admission.Decision == AdmissionDecision.Cancelled ? ProxyFailure.ClientClosedRequest : ProxyFailure.AdmissionRefused;
            request.RetryAfterSeconds = admission.RetryAfterSeconds;
            request.Shed = admission.Shed;
            request.QueuePosition = admission.QueuePosition;
            request.GrantRate = admission.GrantRate;
            return false;
        }

        request.Lease = admission.Lease;
        admission.Lease.StartStream(request.Streamed);
        if (request.Inspected.Stream)
        {
            // A JSON answer's first byte comes after its last token: only streams await one.
            request.FirstToken.Start(admission.Lease.PendingFirstTokens, request.Started);
        }

        request.Slot = admission.Slot;
        request.Admitted = true;
        return true;
    }

    // DataPlaneHandler's finally, once: the worker slot, when an exception left it held (each
    // attempt gives its own back), then the admission slot, whose fair-share charge settles to
    // the usage when there is one (less the chunks already charged as they streamed).
    public void Release(ProxyRequest request)
    {
        // Preempted for the fleet's want and ended before its requeue: its slot is the want's.
        admissions.ReleaseSlot(ref request.Slot, toFleet: request.Preemption.IsPreempted && request.Preemption.ForFleet);
        var lease = request.Lease;
        request.Lease = default;
        lease.Unregister(request.Preemption);
        lease.Release(request.Usage, request.Streamed.Chunks);
        request.Streamed.End();
        request.FirstToken.End();
    }
}
