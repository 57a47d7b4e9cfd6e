using System.Reflection;
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

    [Fact]
    public async Task AsyncLocal_SetBeforeAWait_IsSeenAfterIt_WithEitherBuilder()
    {
        // The continuation runs on a pool thread that knows nothing of the caller (the gate's
        // continuations run asynchronously, and the builder registers them unsafely): only the
        // context the box captured at the wait can bring the value back.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new StrongBox<string?>();
        Flowing.Value = "request-1";
        var typed = SeenAfterWait(gate.Task).AsTask();
        Flowing.Value = "request-2";
        var untyped = SeenAfterWait(gate.Task, seen).AsTask();
        Flowing.Value = null;

        gate.SetResult();

        Assert.Equal("request-1", await typed.WaitAsync(TimeSpan.FromSeconds(10)));
        await untyped.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("request-2", seen.Value);
    }

    [Fact]
    public async Task AsyncLocal_OfOneCall_DoesNotLeakIntoTheNextCallOnTheSameRecycledBox()
    {
        Assert.Equal("request-1", await CallWith("request-1"));
        var idle = IdleBoxes();
        Assert.True(idle > 0, "the first call's box went back to the pool");

        // The next call takes that box; its caller's flow has no value, nor may the call.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var next = SeenAfterWait(gate.Task).AsTask();
        Assert.Equal(idle - 1, IdleBoxes());
        gate.SetResult();
        Assert.Null(await next.WaitAsync(TimeSpan.FromSeconds(10)));

        Assert.Equal("request-3", await CallWith("request-3"));
    }

    private static readonly AsyncLocal<string?> Flowing = new();

    // A call from a flow that holds value (a Task method: its AsyncLocal changes stay inside it).
    private static async Task<string?> CallWith(string? value)
    {
        Flowing.Value = value;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = SeenAfterWait(gate.Task).AsTask();
        gate.SetResult();
        return await task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    // Idle boxes in SeenAfterWait's pool (one pool per result type and state machine).
    private static int IdleBoxes()
    {
        var method = typeof(PooledValueTaskMethodBuilderTests).GetMethod(nameof(SeenAfterWait), BindingFlags.NonPublic | BindingFlags.Static, [typeof(Task)])!;
        var stateMachine = method.GetCustomAttribute<AsyncStateMachineAttribute>()!.StateMachineType;
        var box = typeof(PooledBox<,>).MakeGenericType(typeof(string), stateMachine);
        var pool = box.GetField("Idle", BindingFlags.NonPublic | BindingFlags.Static)!.GetValue(null)!;
        return (int)pool.GetType().GetProperty(nameof(IdlePool<object>.Count))!.GetValue(pool)!;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    private static async ValueTask<string?> SeenAfterWait(Task wait)
    {
        await wait;
        return Flowing.Value;
    }

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
    private static async ValueTask SeenAfterWait(Task wait, StrongBox<string?> seen)
    {
        await wait;
        seen.Value = Flowing.Value;
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
