namespace AotProxy.Tests.Admission;

// A dedicated thread per racer (the thread pool's few threads would take turns, not race),
// seen as a Task: the test awaits it instead of blocking in Join, and an exception on the thread
// fails the test instead of the test process.
internal static class TestThreads
{
    public static Task Start(Action body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                body();
                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        {
            // Should a racer never finish, the test run can still end.
            IsBackground = true,
        };
        thread.Start();
        return done.Task;
    }
}
