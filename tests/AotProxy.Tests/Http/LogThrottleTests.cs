using AotProxy.Http;

namespace AotProxy.Tests.Http;

public sealed class LogThrottleTests
{
    [Fact]
    public void TryEnter_OpensOncePerInterval_AndCountsWhatItHeldBack()
    {
        var time = new FakeTimeProvider();
        var throttle = new LogThrottle(TimeSpan.FromSeconds(1), time);

        Assert.True(throttle.TryEnter(out var first));
        Assert.Equal(0, first);
        for (var i = 0; i < 5; i++)
        {
            Assert.False(throttle.TryEnter(out _));
        }

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(throttle.TryEnter(out _));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(throttle.TryEnter(out var held));
        Assert.Equal(6, held);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.True(throttle.TryEnter(out var none));
        Assert.Equal(0, none);
    }

    [Fact]
    public void TryEnter_FromManyThreadsAtOnce_OpensOnceAndLosesNoCount()
    {
        var time = new FakeTimeProvider();
        var throttle = new LogThrottle(TimeSpan.FromSeconds(1), time);
        var opened = 0;

        Parallel.For(0, 10_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            if (throttle.TryEnter(out _))
            {
                Interlocked.Increment(ref opened);
            }
        });

        Assert.Equal(1, opened);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(throttle.TryEnter(out var held));
        Assert.Equal(9_999, held);
    }
}
