using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A shared store whose announcements are all lost: a real SqliteTenantStore (another writer on the
// same file makes the changes "elsewhere"), and a wait for a change that ends only when the test
// says the interval passed (Elapse), never with an announcement. So the test holds the watch loop
// parked as long as it likes, with no wall clock, and sees the interval it asked for.
internal sealed class RereadOnlyStore(ITenantStore inner) : DelegatingTenantStore(inner), ISharedTenantStore
{
    private readonly Lock _lock = new();
    private TaskCompletionSource<bool> _wait = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<TimeSpan> _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The interval of the next wait the directory starts (or has started and not seen end).
    public Task<TimeSpan> WaitingAsync()
    {
        lock (_lock)
        {
            return _waiting.Task;
        }
    }

    // Ends the directory's current wait as its timeout would: no change was announced.
    public void Elapse()
    {
        TaskCompletionSource<bool> wait;
        lock (_lock)
        {
            wait = _wait;
            _wait = new(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        wait.SetResult(false);
    }

    public Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _waiting.TrySetResult(timeout);
            return _wait.Task.WaitAsync(cancellationToken);
        }
    }
}
