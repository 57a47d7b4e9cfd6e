namespace AotProxy.Admin;

// What the dashboard's event stream waits on besides its one-second tick: a breaker moved, a
// worker was drained or undrained, a reload ran (applied or rejected), a tenant or key changed.
// Pulse is cheap (one exchange and a completion) and never runs per request: breakers and drains
// reach it through CapacitySignal, reloads through ConfigStore.Reloaded, the admin API's writes
// from AdminHandler.
internal sealed class AdminChanges
{
    private TaskCompletionSource _next = NewSource();

    // Completes at the next pulse after this read.
    public Task Next => Volatile.Read(ref _next).Task;

    public void Pulse() => Interlocked.Exchange(ref _next, NewSource()).TrySetResult();

    // Asynchronous continuations: the stream's loop never runs on the thread that pulsed (a
    // breaker's request, the reload lock's holder).
    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
