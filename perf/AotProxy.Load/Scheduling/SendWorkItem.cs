namespace AotProxy.Load.Scheduling;

// One scheduled send, queued to the thread pool without a closure or a Task.
internal sealed class SendWorkItem(LoadRunner runner, int mix, long intended) : IThreadPoolWorkItem
{
    // The send records its own outcome, exceptions included, so nothing is lost by not awaiting.
    public void Execute() => _ = runner.SendScheduledAsync(mix, intended);
}
