using AotProxy.Routing;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Routing;

public class RouterTests
{
    [Fact]
    public void Pick_SkipsOpenBreakersAndWorkersAlreadyTried()
    {
        var test = new TestPool(3).With(r => r with { Strategy = "round_robin" });
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        for (var i = 0; i < test.Snapshot.CircuitBreaker.FailureThreshold; i++)
        {
            Complete(router, test, test.Workers[0], AttemptOutcome.UpstreamFailed);
        }

        ulong tried = 0;
        var slot = default(WorkerSlot);
        var first = router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out var permit);
        var second = router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out _);
        var third = router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out _);

        Assert.Equal(BreakerPermit.Normal, permit);
        Assert.Equal(["w1", "w2"], new[] { first!.Name, second!.Name }.Order());
        Assert.Null(third);
        Assert.False(router.HasCandidate(test.Pool, test.Snapshot, tried));
        Assert.Equal(1, first.Decisions(0));
    }

    [Fact]
    public void Complete_ClientAbortsNeverCountAgainstTheWorker()
    {
        var test = new TestPool(1);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);

        for (var i = 0; i < 20; i++)
        {
            Complete(router, test, test.Workers[0], AttemptOutcome.ClientAborted);
        }

        Assert.Equal(BreakerState.Closed, test.Workers[0].Breaker.State);
        Assert.Equal(0, test.Workers[0].Breaker.Failures);
        Assert.Equal(0, test.Workers[0].Errors.Rate(test.Time.GetTimestamp() / test.Time.TimestampFrequency));
    }

    [Fact]
    public void Complete_ASlowFirstByteCountsAsAFailure()
    {
        var test = new TestPool(1);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        var slow = test.Snapshot.CircuitBreaker.SlowCallThreshold + TimeSpan.FromSeconds(1);

        for (var i = 0; i < test.Snapshot.CircuitBreaker.FailureThreshold; i++)
        {
            router.Complete(test.Workers[0], BreakerPermit.Normal, AttemptOutcome.Succeeded, slow, slow, 0, test.Snapshot);
        }

        Assert.Equal(BreakerState.Open, test.Workers[0].Breaker.State);
    }

    [Fact]
    public void Complete_Success_FeedsTheLatencyAverages()
    {
        var test = new TestPool(1);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);

        router.Complete(test.Workers[0], BreakerPermit.Normal, AttemptOutcome.Succeeded, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(1200), 101, test.Snapshot);

        Assert.Equal(0.2, test.Workers[0].Ttft.Seconds, 6);
        Assert.Equal(0.01, test.Workers[0].TimePerOutputToken.Seconds, 6);
    }

    // Issue 14, item 6: max_concurrency is a bound. Each pick takes one of the picked worker's
    // slots; a worker whose slots are all taken is skipped, and with none left there is no pick.
    [Fact]
    public void Pick_NeverPicksAWorkerAtItsMaxConcurrency()
    {
        var test = new TestPool(3, maxConcurrency: 2).With(r => r with { Strategy = "round_robin" });
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        var slots = new List<WorkerSlot>();

        for (var i = 0; i < 6; i++)
        {
            ulong tried = 0;
            var slot = default(WorkerSlot);
            Assert.NotNull(router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out _));
            slots.Add(slot);
        }

        ulong none = 0;
        var extra = default(WorkerSlot);
        var refused = router.Pick(test.Pool, test.Snapshot, default, ref none, ref extra, out var permit);

        Assert.Equal([2, 2, 2], test.Workers.Select(w => w.SlotsTaken));
        Assert.Null(refused);
        Assert.Equal(BreakerPermit.Denied, permit);
        Assert.False(extra.IsHeld);
        Assert.False(router.HasCandidate(test.Pool, test.Snapshot, 0));

        var freed = slots.FindIndex(s => s.Worker == test.Workers[1]);
        var one = slots[freed];
        one.Release();
        ulong again = 0;
        Assert.Same(test.Workers[1], router.Pick(test.Pool, test.Snapshot, default, ref again, ref extra, out _));
        Assert.Equal([2, 2, 2], test.Workers.Select(w => w.SlotsTaken));
    }

    // Admission's slot is on some worker; the pick keeps it there when the strategy picks that
    // one, and moves it to the worker the strategy prefers otherwise: one slot per request.
    [Fact]
    public void Pick_MovesTheRequestsSlotToThePickedWorker()
    {
        var test = new TestPool(2, maxConcurrency: 1).With(r => r with { Strategy = "round_robin" });
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        Assert.True(router.TryReserve(test.Pool, test.Snapshot, out var slot));
        Assert.Equal((test.Workers[0], BreakerPermit.Normal), (slot.Worker, slot.Permit));

        // w0 is full, with this request's own slot: still a candidate for it.
        ulong tried = 0;
        var first = router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out var permit);
        Assert.Equal((test.Workers[0], test.Workers[0], BreakerPermit.Normal), (first, slot.Worker, permit));
        Assert.Equal([1, 0], test.Workers.Select(w => w.SlotsTaken));

        tried = 0;
        var second = router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out permit);
        Assert.Equal((test.Workers[1], test.Workers[1], BreakerPermit.Normal), (second, slot.Worker, permit));
        Assert.Equal([0, 1], test.Workers.Select(w => w.SlotsTaken));

        slot.Release();
        Assert.Equal([0, 0], test.Workers.Select(w => w.SlotsTaken));
    }

    [Fact]
    public void TryReserve_TakesTheWorkerWithTheMostRoom_AndNothingOnceAllAreFull()
    {
        var test = new TestPool(3, maxConcurrency: 2);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        Assert.True(test.Workers[0].TryTakeSlot(test.Snapshot, out _));
        Assert.True(test.Workers[2].TryTakeSlot(test.Snapshot, out _));

        Assert.True(router.TryReserve(test.Pool, test.Snapshot, out var first));
        Assert.Same(test.Workers[1], first.Worker);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(router.TryReserve(test.Pool, test.Snapshot, out _));
        }

        Assert.False(router.TryReserve(test.Pool, test.Snapshot, out var none));
        Assert.False(none.IsHeld);
        Assert.Equal([2, 2, 2], test.Workers.Select(w => w.SlotsTaken));
    }

    // Issue 14, item 4: a worker back from an outage with its breaker past open_timeout lets only
    // half_open_max_requests trials through. It offers admission that many slots, not
    // max_concurrency, so no request is granted a slot that its breaker would then refuse.
    [Fact]
    public void TryReserve_BreakerPastOpenTimeout_OffersOnlyItsTrials()
    {
        var test = new TestPool(1, maxConcurrency: 8);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        var breaker = test.Snapshot.CircuitBreaker;
        for (var i = 0; i < breaker.FailureThreshold; i++)
        {
            Complete(router, test, test.Workers[0], AttemptOutcome.UpstreamFailed);
        }

        Assert.Equal(0, test.Pool.Capacity(test.Snapshot));
        test.Time.Advance(breaker.OpenTimeout);

        Assert.Equal(breaker.HalfOpenMaxRequests, test.Pool.Capacity(test.Snapshot));
        var trials = new List<WorkerSlot>();
        while (router.TryReserve(test.Pool, test.Snapshot, out var trial) && trials.Count <= 8)
        {
            trials.Add(trial);
        }

        Assert.Equal(breaker.HalfOpenMaxRequests, trials.Count);
        Assert.All(trials, t => Assert.Equal(BreakerPermit.Trial, t.Permit));
        Assert.Equal(BreakerState.HalfOpen, test.Workers[0].Breaker.State);

        // The request that holds the trial is routed to it, although the breaker lets no one else in.
        ulong tried = 0;
        var held = trials[^1];
        Assert.Same(test.Workers[0], router.Pick(test.Pool, test.Snapshot, default, ref tried, ref held, out var permit));
        Assert.Equal(BreakerPermit.Trial, permit);
        Assert.False(router.TryReserve(test.Pool, test.Snapshot, out _));

        // Its attempt ends without a verdict (the client went away): trial and slot come back.
        test.Workers[0].Breaker.OnAbandoned(permit);
        held.Release();
        Assert.True(router.TryReserve(test.Pool, test.Snapshot, out var next));
        Assert.Equal(BreakerPermit.Trial, next.Permit);

        // A reservation given back unused (its request went away before routing) frees the trial too.
        next.Release();
        Assert.True(router.TryReserve(test.Pool, test.Snapshot, out var again));
        Assert.Equal((BreakerPermit.Trial, 1), (again.Permit, test.Workers[0].SlotsTaken));
    }

    // Many threads reserve, pick (moving their slot) and release at once: a worker never holds
    // more than its slots, every reservation is picked (no request is left without a worker),
    // and everything comes back.
    [Fact]
    public async Task ReserveAndPick_ManyThreadsAtOnce_NeverExceedAWorkersSlots()
    {
        const int Threads = 4;
        const int Rounds = 5000;
        var test = new TestPool(3, maxConcurrency: 2).With(r => r with { Strategy = "p2c_kv" });
        var router = new Router(test.Time, Random.Shared, NullLogger.Instance);
        var peak = new int[test.Workers.Length];
        var unpicked = 0;
        var reserved = 0;

        var threads = Enumerable.Range(0, Threads).Select(thread => Admission.TestThreads.Start(() =>
        {
            for (var round = 0; round < Rounds; round++)
            {
                if (!router.TryReserve(test.Pool, test.Snapshot, out var slot))
                {
                    Thread.Yield();
                    continue;
                }

                Interlocked.Increment(ref reserved);
                ulong tried = 0;
                if (router.Pick(test.Pool, test.Snapshot, default, ref tried, ref slot, out _) is null)
                {
                    Interlocked.Increment(ref unpicked);
                }

                for (var i = 0; i < peak.Length; i++)
                {
                    var taken = test.Workers[i].SlotsTaken;
                    var seen = Volatile.Read(ref peak[i]);
                    while (taken > seen && Interlocked.CompareExchange(ref peak[i], taken, seen) is var found && found != seen)
                    {
                        seen = found;
                    }
                }

                slot.Release();
            }
        })).ToArray();
        await Task.WhenAll(threads).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(reserved > Rounds, $"only {reserved} reservations");
        Assert.Equal(0, unpicked);
        Assert.All(peak, p => Assert.InRange(p, 1, 2));
        Assert.All(test.Workers, w => Assert.Equal(0, w.SlotsTaken));
    }

    private static void Complete(Router router, TestPool test, WorkerState worker, AttemptOutcome outcome) =>
        router.Complete(worker, worker.Breaker.TryAcquire(test.Snapshot.CircuitBreaker), outcome, null, TimeSpan.Zero, 0, test.Snapshot);
}
