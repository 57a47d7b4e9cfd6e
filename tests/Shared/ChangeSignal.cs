namespace AotProxy.Testing;

// Wakes whoever waits on a fake server's counters at each change, so that a test waits for what
// the server saw, bounded, never for a fixed time.
internal sealed class ChangeSignal
{
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Changed() =>
        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    // Until `condition` holds, checked again at each change; after `timeout`, fails with what
    // `state` says of the counters.
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string> state)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            var changed = Volatile.Read(ref _changed).Task;
            if (condition())
            {
                return;
            }

            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"timed out waiting until {what} ({state()})");
            }
        }
    }
}
