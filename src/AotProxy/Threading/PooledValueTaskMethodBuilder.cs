using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace AotProxy.Threading;

// PooledValueTaskMethodBuilder<T> for a method returning ValueTask (no result):
//   [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder))]
// The data plane's per-request method returns one, and Kestrel gets it through AsTask(): a
// ~100-byte task wrapper instead of the whole state machine boxed per request (~700 B).
internal struct PooledValueTaskMethodBuilder
{
    private PooledValueTaskMethodBuilder<bool> _inner;

    public static PooledValueTaskMethodBuilder Create() => default;

    public readonly ValueTask Task => _inner.UntypedTask;

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => _inner.Start(ref stateMachine);

    // The builder pattern's signature; a struct state machine never needs it (.NET Core's
    // builders ignore it too).
    [SuppressMessage("Style", "IDE0060:Remove unused parameter", Justification = "Required by the async method builder pattern.")]
    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    // _inner is a field of the builder inside the state machine: the box it sets on the first
    // wait lands in the state machine's own copy, as with the generic builder.
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitOnCompleted(ref awaiter, ref stateMachine);

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine =>
        _inner.AwaitUnsafeOnCompleted(ref awaiter, ref stateMachine);

    public void SetResult() => _inner.SetResult(true);

    public void SetException(Exception exception) => _inner.SetException(exception);
}
