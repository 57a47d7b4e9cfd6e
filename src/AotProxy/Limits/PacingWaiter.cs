namespace AotProxy.Limits;

// One request waiting for its worker's turn. Only requests that must wait allocate one; the
// continuation runs asynchronously, so the pacer may complete it under its lock.
internal sealed class PacingWaiter(UpstreamPacer pacer, long tokens, long enqueued, long deadline)
{
    private readonly TaskCompletionSource<PacingResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationTokenRegistration _cancellation;

    public long Tokens { get; } = tokens;

    // Both in the pacer's clock (TimeSpan ticks since it started).
    public long Enqueued { get; } = enqueued;

    public long Deadline { get; } = deadline;

    public LinkedListNode<PacingWaiter>? Node { get; set; }

    public Task<PacingResult> Task => _completion.Task;

    public void Watch(CancellationToken ct)
    {
        if (ct.CanBeCanceled)
        {
            _cancellation = ct.UnsafeRegister(static state => ((PacingWaiter)state!).Cancel(), this);
        }
    }

    // Unregister, not Dispose: Dispose would wait for a running cancel callback, which waits for
    // the pacer's lock that the caller holds.
    public void Complete(PacingResult result)
    {
        _cancellation.Unregister();
        _completion.TrySetResult(result);
    }

    private void Cancel() => pacer.Cancel(this);
}
