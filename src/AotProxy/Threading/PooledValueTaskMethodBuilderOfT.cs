using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace AotProxy.Threading;

// An async method builder for ValueTask<T> whose state-machine boxes come from a pool of
// 1,024 per method. The runtime's PoolingAsyncValueTaskMethodBuilder keeps one box per thread
// and one per core, so with 64 requests in flight nearly every request allocated its own
// (≈600 B for the forwarder, see perf/RESULTS.md). Use it on hot-path methods that wait:
//   [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
// The ValueTask it returns must be awaited once, as with any ValueTask.
internal struct PooledValueTaskMethodBuilder<TResult>
{
    private PooledBox<TResult>? _box;
    private TResult _result;
    private Exception? _exception;
    private bool _completed;

    public static PooledValueTaskMethodBuilder<TResult> Create() => default;

    public ValueTask<TResult> Task =>
        _box is { } box ? new ValueTask<TResult>(box, box.Version)
        : _exception is { } exception ? ValueTask.FromException<TResult>(exception)
        : _completed ? new ValueTask<TResult>(_result)
        : throw new InvalidOperationException("The async method has not completed and never waited.");

    // The same task without its result, for PooledValueTaskMethodBuilder (a method returning ValueTask).
    internal readonly ValueTask UntypedTask =>
        _box is { } box ? new ValueTask(box, box.Version)
        : _exception is { } exception ? ValueTask.FromException(exception)
        : _completed ? ValueTask.CompletedTask
        : throw new InvalidOperationException("The async method has not completed and never waited.");

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        // AsyncTaskMethodBuilder.Start only runs MoveNext with the caller's contexts restored
        // afterwards; it does not touch the builder's own state.
        var runner = default(AsyncTaskMethodBuilder);
        runner.Start(ref stateMachine);
    }

    // The builder pattern's signature; a struct state machine never needs it (.NET Core's
    // builders ignore it too).
    [SuppressMessage("Style", "IDE0060:Remove unused parameter", Justification = "Required by the async method builder pattern.")]
    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        awaiter.OnCompleted(BoxFor(ref stateMachine).MoveNextAction);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        awaiter.UnsafeOnCompleted(BoxFor(ref stateMachine).MoveNextAction);

    public void SetResult(TResult result)
    {
        if (_box is { } box)
        {
            box.SetResult(result);
        }
        else
        {
            _result = result;
            _completed = true;
        }
    }

    public void SetException(Exception exception)
    {
        if (_box is { } box)
        {
            box.SetException(exception);
        }
        else
        {
            _exception = exception;
        }
    }

    private PooledBox<TResult> BoxFor<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        var context = ExecutionContext.Capture();
        if (_box is PooledBox<TResult, TStateMachine> current)
        {
            current.Context = context;
            return current;
        }

        // The first wait: the box is set on this builder before the state machine (which holds
        // the builder) is copied into it, so the caller's copy and the boxed copy share it.
        var box = PooledBox<TResult, TStateMachine>.Rent();
        _box = box;
        box.StateMachine = stateMachine;
        box.Context = context;
        return box;
    }
}
