using System.Runtime.CompilerServices;

namespace AotProxy.Threading;

// One async method's box: its state machine, and a bounded pool of idle boxes per method.
internal sealed class PooledBox<TResult, TStateMachine> : PooledBox<TResult>
    where TStateMachine : IAsyncStateMachine
{
    // 1,024 idle boxes per method: enough for the connection counts the gateway is measured at.
    private const int Capacity = 1024;

    private static readonly ContextCallback RunInContext = static state => ((PooledBox<TResult, TStateMachine>)state!).StateMachine.MoveNext();
    private static readonly Lock PoolLock = new();
    private static readonly PooledBox<TResult, TStateMachine>?[] Pool = new PooledBox<TResult, TStateMachine>?[Capacity];
    private static int _pooled;

    private PooledBox() => MoveNextAction = MoveNext;

    public TStateMachine StateMachine = default!;

    public static PooledBox<TResult, TStateMachine> Rent()
    {
        lock (PoolLock)
        {
            if (_pooled > 0)
            {
                var box = Pool[--_pooled]!;
                Pool[_pooled] = null;
                return box;
            }
        }

        return new PooledBox<TResult, TStateMachine>();
    }

    private protected override void Recycle()
    {
        StateMachine = default!;
        Context = null;
        lock (PoolLock)
        {
            if (_pooled < Capacity)
            {
                Pool[_pooled++] = this;
            }
        }
    }

    private void MoveNext()
    {
        if (Context is { } context)
        {
            ExecutionContext.Run(context, RunInContext, this);
        }
        else
        {
            StateMachine.MoveNext();
        }
    }
}
