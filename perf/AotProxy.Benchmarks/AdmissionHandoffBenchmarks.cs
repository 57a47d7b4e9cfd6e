using AotProxy.Admission;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// One queued request's whole handoff, on one thread: rent a waiter, enqueue it, WaitAsync (arms
// the timeout and registers the token), dequeue, TryGrant, release the queue's share, then read
// the result as `await` does on a completed ValueTask (which releases the request's share and
// returns the waiter to its pool). Not included: the thread-pool hop of a continuation that
// really waited. Expected: 0 B, the timer re-armed rather than created, the token's
// registration node reused by its CancellationTokenSource.
[MemoryDiagnoser]
public class AdmissionHandoffBenchmarks
{
    private static readonly TimeSpan MaxQueueWait = TimeSpan.FromSeconds(30);

    private readonly BoundedRing<AdmissionWaiter> _ring = new(1024);
    private readonly WaiterPool _pool = new(TimeProvider.System, 64);
    private readonly CancellationTokenSource _requestAborted = new();

    [GlobalSetup]
    public void Setup()
    {
        const int Granted = (int)AdmissionOutcome.Granted;
        if (Handoff() != Granted || HandoffWithoutTimeout() != Granted || HandoffWithToken() != Granted)
        {
            throw new InvalidOperationException("the handoff does not grant");
        }
    }

    // max_queue_wait armed, no cancellable token.
    [Benchmark]
    public int Handoff() => Run(MaxQueueWait, CancellationToken.None);

    [Benchmark]
    public int HandoffWithoutTimeout() => Run(Timeout.InfiniteTimeSpan, CancellationToken.None);

    // As a request does: max_queue_wait and the client's abort token.
    [Benchmark]
    public int HandoffWithToken() => Run(MaxQueueWait, _requestAborted.Token);

    // The outcome as an int: the benchmark methods are public, AdmissionOutcome is internal.
    private int Run(TimeSpan timeout, CancellationToken token)
    {
        var waiter = _pool.Rent("tenant-a", "interactive", 0, default);
        if (!_ring.TryEnqueue(waiter))
        {
            waiter.Abandon();
            throw new InvalidOperationException("ring full");
        }

        var wait = waiter.WaitAsync(timeout, token);

        _ring.TryDequeue(out var next);
        next!.TryGrant();
        next.ReleaseFromQueue();

        // Granted above, so complete: what `await` does with a completed ValueTask.
        if (!wait.IsCompleted)
        {
            throw new InvalidOperationException("the wait did not complete");
        }

        return (int)wait.GetAwaiter().GetResult().Outcome;
    }
}
