using AotProxy.Routing;
using AotProxy.Routing.Policies;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Routing;

// 503 (vLLM's queue is full) and 429 (a hosted API's limit) mean "full, try another": never a
// breaker failure, never an error, and the worker looks full to the strategies for a while.
public class PushBackTests
{
    [Theory]
    [InlineData(503)]
    [InlineData(429)]
    public void Complete_PushedBack_IsNeverABreakerFailureNorAnError_AndIsCountedByStatus(int status)
    {
        var test = new TestPool(1);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        var worker = test.Workers[0];

        for (var i = 0; i < 4 * test.Snapshot.CircuitBreaker.FailureThreshold; i++)
        {
            router.Complete(worker, worker.Breaker.TryAcquire(test.Snapshot.CircuitBreaker), AttemptOutcome.PushedBack, null, TimeSpan.Zero, 0, test.Snapshot, status);
        }

        Assert.Equal(BreakerState.Closed, worker.Breaker.State);
        Assert.Equal((0L, 0), (worker.Breaker.Failures, worker.Breaker.ConsecutiveFailures));
        Assert.Equal(0, worker.Errors.Rate(test.Time.GetTimestamp() / test.Time.TimestampFrequency));
        Assert.Equal(4 * test.Snapshot.CircuitBreaker.FailureThreshold, worker.PushBacks);
        Assert.Equal(worker.PushBacks, worker.PushBacksWith(status));
        Assert.Equal(0, worker.PushBacksWith(status == 503 ? 429 : 503));
    }

    [Fact]
    public void Complete_PushedBackHalfOpenTrial_GivesItsPermitBack()
    {
        var test = new TestPool(1);
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        var worker = test.Workers[0];
        var breaker = test.Snapshot.CircuitBreaker;
        for (var i = 0; i < breaker.FailureThreshold; i++)
        {
            router.Complete(worker, worker.Breaker.TryAcquire(breaker), AttemptOutcome.UpstreamFailed, null, TimeSpan.Zero, 0, test.Snapshot);
        }

        test.Time.Advance(breaker.OpenTimeout);
        var trials = Enumerable.Range(0, breaker.HalfOpenMaxRequests).Select(_ => worker.Breaker.TryAcquire(breaker)).ToArray();
        Assert.All(trials, t => Assert.Equal(BreakerPermit.Trial, t));
        Assert.False(worker.Breaker.AllowsTraffic(breaker)); // every trial taken

        router.Complete(worker, trials[0], AttemptOutcome.PushedBack, null, TimeSpan.Zero, 0, test.Snapshot, 503);

        Assert.Equal(BreakerState.HalfOpen, worker.Breaker.State); // no verdict: neither reopened nor closer to closing
        Assert.True(worker.Breaker.AllowsTraffic(breaker));
        Assert.Equal(BreakerPermit.Trial, worker.Breaker.TryAcquire(breaker));
    }

    [Fact]
    public void Load_APushedBackWorker_LooksFullUntilAScrapeAfterIt()
    {
        var test = new TestPool(1, maxConcurrency: 8);
        var worker = test.Workers[0];
        test.Scrape(0, running: 1, waiting: 0);

        worker.OnPushedBack(503, TimeSpan.Zero);
        Assert.Equal(8, worker.Load(test.Routing.StaleAfter).Waiting);

        test.Time.Advance(TimeSpan.FromMilliseconds(1));
        test.Scrape(0, running: 1, waiting: 0); // the worker's own word, after the push-back
        Assert.Equal(0, worker.Load(test.Routing.StaleAfter).Waiting);
    }

    [Fact]
    public void Load_RetryAfter_KeepsItFullPastTheNextScrape_UntilItEnds()
    {
        var test = new TestPool(1, maxConcurrency: 8);
        var worker = test.Workers[0];
        test.Scrape(0, running: 1, waiting: 0);

        worker.OnPushedBack(429, TimeSpan.FromSeconds(5));
        test.Time.Advance(TimeSpan.FromSeconds(1));
        test.Scrape(0, running: 1, waiting: 0);
        Assert.Equal(8, worker.Load(test.Routing.StaleAfter).Waiting);

        test.Time.Advance(TimeSpan.FromSeconds(4));
        test.Scrape(0, running: 1, waiting: 0);
        Assert.Equal(0, worker.Load(test.Routing.StaleAfter).Waiting);
    }

    [Fact]
    public void Load_WithoutScrapes_APushBackCountsForStaleAfterOnly()
    {
        var test = new TestPool(1, maxConcurrency: 8);
        var worker = test.Workers[0];

        worker.OnPushedBack(503, TimeSpan.Zero);
        Assert.Equal(8, worker.Load(test.Routing.StaleAfter).Waiting);

        test.Time.Advance(test.Routing.StaleAfter + TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, worker.Load(test.Routing.StaleAfter).Waiting);
    }

    [Fact]
    public void P2cKv_PrefersTheWorkersThatDidNotPushBack()
    {
        var test = new TestPool(2).With(r => r with { Strategy = "p2c_kv" });
        test.Scrape(0, running: 1, waiting: 0);
        test.Scrape(1, running: 2, waiting: 1); // busier by its gauges
        test.Workers[0].OnPushedBack(503, TimeSpan.Zero);
        var (policy, _) = RoutingPolicies.Get("p2c_kv");

        var picks = Enumerable.Range(0, 50).Select(_ => policy.Pick(test.Pool, test.Context())).ToArray();

        Assert.All(picks, p => Assert.Equal(1, p));
    }
}
