using System.Runtime.CompilerServices;
using AotProxy.Threading;

namespace AotProxy.Tests.Threading;

// The builder behind the data plane's per-request method: a ValueTask without a result whose
// state machine lives in a pooled box. It must behave as an ordinary async ValueTask.
public class PooledValueTaskMethodBuilderTests
{
    [Fact]
    public async Task Method_ThatNeverWaits_CompletesSynchronously()
    {
        var log = new List<string>();

        var task = Run(log, wait: null);

        Assert.True(task.IsCompletedSuccessfully);
        await task;
        Assert.Equal(["start", "end"], log);
    }

    [Fact]
    public async Task Method_ThatWaits_CompletesWhenTheAwaitedTaskDoes()
    {
        var log = new List<string>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var task = Run(log, gate.Task).AsTask();
        Assert.False(task.IsCompleted);
        Assert.Equal(["start"], log);

        gate.SetResult();
        await task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(["start", "end"], log);
    }

    [Fact]
    public async Task Exception_AfterAWait_ReachesTheCaller()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var task = Fail(gate.Task).AsTask();
        gate.SetResult();

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("after the wait", thrown.Message);
    }

    [Fact]
    public async Task Exception_BeforeAnyWait_ReachesTheCaller()
    {
        var task = Fail(wait: null);

        Assert.True(task.IsFaulted);
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await task);
    }

    [Fact]
    public async Task Boxes_AreReused_AcrossManyCalls_WithoutMixingTheirState()
    {
        // Sequential calls recycle the same boxes; each call must still see only its own locals.
        for (var i = 0; i < 200; i++)
        {
            var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            var task = Echo(i, gate.Task).AsTask();
            gate.SetResult(i * 2);
            await task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(i * 3, _echoed);
        }
    }

    private int _echoed;

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    private async ValueTask Echo(int value, Task<int> wait)
    {
        var doubled = await wait;
        _echoed = value + doubled;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    private static async ValueTask Run(List<string> log, Task? wait)
    {
        log.Add("start");
        if (wait is not null)
        {
            await wait;
        }

        log.Add("end");
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    private static async ValueTask Fail(Task? wait)
    {
        if (wait is not null)
        {
            await wait;
            throw new InvalidOperationException("after the wait");
        }

        throw new InvalidOperationException("before any wait");
    }
}
