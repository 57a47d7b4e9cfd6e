using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Tests.Routing;

public class CircuitBreakerTests
{
    private static readonly CircuitBreakerModel Model = new(FailureThreshold: 3, SuccessThreshold: 2, OpenTimeout: TimeSpan.FromSeconds(30), HalfOpenMaxRequests: 1, SlowCallThreshold: TimeSpan.FromSeconds(10));

    [Fact]
    public void ConsecutiveFailures_OpenIt_AndASuccessInBetweenStartsTheCountAgain()
    {
        var time = new FakeTimeProvider();
        var breaker = new CircuitBreaker(time);

        Fail(breaker, 2);
        breaker.OnSuccess(breaker.TryAcquire(Model), Model);
        Fail(breaker, 2);
        Assert.Equal(BreakerState.Closed, breaker.State);

        Fail(breaker, 1);
        Assert.Equal(BreakerState.Open, breaker.State);
        Assert.Equal(BreakerPermit.Denied, breaker.TryAcquire(Model));
        Assert.False(breaker.AllowsTraffic(Model));
        Assert.Equal(5, breaker.Failures);
        Assert.Equal(1, breaker.TimesOpened);
    }

    [Fact]
    public void AfterTheOpenTimeout_HalfOpenLetsTrialsThroughAndTheirSuccessesCloseIt()
    {
        var time = new FakeTimeProvider();
        var breaker = new CircuitBreaker(time);
        Fail(breaker, 3);

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(BreakerPermit.Denied, breaker.TryAcquire(Model));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(breaker.AllowsTraffic(Model));

        var trial = breaker.TryAcquire(Model);
        Assert.Equal(BreakerPermit.Trial, trial);
        Assert.Equal(BreakerState.HalfOpen, breaker.State);
        Assert.Equal(BreakerPermit.Denied, breaker.TryAcquire(Model)); // half_open_max_requests = 1
        breaker.OnSuccess(trial, Model);
        Assert.Equal(BreakerState.HalfOpen, breaker.State);

        breaker.OnSuccess(breaker.TryAcquire(Model), Model);
        Assert.Equal(BreakerState.Closed, breaker.State);
        Assert.Equal(BreakerPermit.Normal, breaker.TryAcquire(Model));
    }

    [Fact]
    public void AFailedTrial_OpensItAgain_AndAnAbandonedTrialFreesItsSlot()
    {
        var time = new FakeTimeProvider();
        var breaker = new CircuitBreaker(time);
        Fail(breaker, 3);
        time.Advance(TimeSpan.FromSeconds(30));

        var abandoned = breaker.TryAcquire(Model);
        breaker.OnAbandoned(abandoned);
        var trial = breaker.TryAcquire(Model);
        Assert.Equal(BreakerPermit.Trial, trial);

        breaker.OnFailure(trial, Model);
        Assert.Equal(BreakerState.Open, breaker.State);
        Assert.Equal(2, breaker.TimesOpened);
        Assert.Equal(BreakerPermit.Denied, breaker.TryAcquire(Model));
    }

    [Fact]
    public void Reset_ClosesAnOpenBreaker()
    {
        var breaker = new CircuitBreaker(new FakeTimeProvider());
        Fail(breaker, 3);

        breaker.Reset();

        Assert.Equal(BreakerState.Closed, breaker.State);
        Assert.Equal(0, breaker.ConsecutiveFailures);
        Assert.NotNull(breaker.LastTransition);
    }

    // [cluster]: another replica's breaker opened with 10 s of its open_timeout left: this one
    // opens for those 10 s (not its own 30), then lets its own trial through; one that is not
    // closed is left as it is.
    [Fact]
    public void OpenFor_OpensAClosedBreakerUntilTheOtherReplicasOpenUntilTime()
    {
        var time = new FakeTimeProvider();
        var breaker = new CircuitBreaker(time);

        Assert.True(breaker.OpenFor(TimeSpan.FromSeconds(10), Model));
        Assert.Equal(BreakerState.Open, breaker.State);
        Assert.False(breaker.AllowsTraffic(Model));
        Assert.False(breaker.OpenFor(TimeSpan.FromSeconds(20), Model));

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(BreakerPermit.Denied, breaker.TryAcquire(Model));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(BreakerPermit.Trial, breaker.TryAcquire(Model));
        Assert.Equal(BreakerState.HalfOpen, breaker.State);
        Assert.False(breaker.OpenFor(TimeSpan.FromSeconds(10), Model));
        Assert.False(new CircuitBreaker(time).OpenFor(TimeSpan.Zero, Model));
    }

    private static void Fail(CircuitBreaker breaker, int times)
    {
        for (var i = 0; i < times; i++)
        {
            breaker.OnFailure(breaker.TryAcquire(Model), Model);
        }
    }
}
