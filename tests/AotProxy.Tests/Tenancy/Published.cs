using AotProxy.Configuration;

namespace AotProxy.Tests.Tenancy;

// The snapshots a TenantDirectory publishes (its AppliesTo target), and a bounded wait for one
// that satisfies a condition: checked on each publish and on the newest one when the wait starts,
// so a snapshot published before the wait is not missed.
internal sealed class Published
{
    private readonly Lock _lock = new();
    private readonly List<(Func<GatewaySnapshot, bool> Condition, TaskCompletionSource Done)> _waits = [];
    private GatewaySnapshot? _newest;

    public void Set(GatewaySnapshot snapshot)
    {
        lock (_lock)
        {
            _newest = snapshot;
            foreach (var wait in _waits.Where(w => w.Condition(snapshot)).ToList())
            {
                wait.Done.TrySetResult();
                _waits.Remove(wait);
            }
        }
    }

    public Task UntilAsync(Func<GatewaySnapshot, bool> condition, TimeSpan bound)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_newest is { } newest && condition(newest))
            {
                return Task.CompletedTask;
            }

            _waits.Add((condition, done));
        }

        return done.Task.WaitAsync(bound);
    }
}
