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
        var first = router.Pick(test.Pool, test.Snapshot, default, ref tried, out var permit);
        var second = router.Pick(test.Pool, test.Snapshot, default, ref tried, out _);
        var third = router.Pick(test.Pool, test.Snapshot, default, ref tried, out _);

        Assert.Equal(BreakerPermit.Normal, permit);
        Assert.Equal(["w1", "w2"], new[] { first!.Name, second!.Name }.Order());
        Assert.Null(third);
        Assert.False(Router.HasCandidate(test.Pool, test.Snapshot, tried));
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

    [Fact]
    public void Pick_RecordsThePrefixOnThePickedWorker()
    {
        var test = new TestPool(2);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        ulong tried = 0;

        var worker = router.Pick(test.Pool, test.Snapshot, new RouteRequest(99, 0), ref tried, out _);

        Assert.Equal(test.Time.GetTimestamp(), worker!.Prefixes.LastServed(99));
        Assert.Equal(long.MinValue, worker.Prefixes.LastServed(98));
    }

    private static void Complete(Router router, TestPool test, WorkerState worker, AttemptOutcome outcome) =>
        router.Complete(worker, worker.Breaker.TryAcquire(test.Snapshot.CircuitBreaker), outcome, null, TimeSpan.Zero, 0, test.Snapshot);
}
