using System.Threading.Tasks.Sources;

namespace AotProxy.Threading;

// The awaitable side of a pooled async method: a ValueTask source that goes back to its pool
// once its result has been read. Also a plain IValueTaskSource, for methods returning ValueTask
// (PooledValueTaskMethodBuilder without a type argument).
internal abstract class PooledBox<TResult> : IValueTaskSource<TResult>, IValueTaskSource
{
    private ManualResetValueTaskSourceCore<TResult> _core;

    private protected PooledBox()
    {
    }

    public short Version => _core.Version;

    internal Action MoveNextAction { get; private protected set; } = null!;

    internal ExecutionContext? Context { get; set; }

    public TResult GetResult(short token)
    {
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            Recycle();
        }
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    internal void SetResult(TResult result) => _core.SetResult(result);

    internal void SetException(Exception exception) => _core.SetException(exception);

    private protected abstract void Recycle();
}
