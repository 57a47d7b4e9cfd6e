using System.Runtime.CompilerServices;

namespace AotProxy.Threading;

// One async method's box: its state machine, and a bounded pool of idle boxes per method.
internal sealed class PooledBox<TResult, TStateMachine> : PooledBox<TResult>
    where TStateMachine : IAsyncStateMachine
{
    private static readonly ContextCallback RunInContext = static state => ((PooledBox<TResult, TStateMachine>)state!).StateMachine.MoveNext();

    // 1,024 idle boxes per method: enough for the connection counts the gateway is measured at.
    private static readonly IdlePool<PooledBox<TResult, TStateMachine>> Idle = new(1024);

    private PooledBox() => MoveNextAction = MoveNext;

    public TStateMachine StateMachine = default!;

    public static PooledBox<TResult, TStateMachine> Rent() => Idle.TryRent() ?? new PooledBox<TResult, TStateMachine>();

    private protected override void Recycle()
    {
        StateMachine = default!;
        Context = null;
        Idle.Return(this);
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
