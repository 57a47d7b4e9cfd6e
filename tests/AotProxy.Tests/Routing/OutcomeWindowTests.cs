using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Routing;

namespace AotProxy.Tests.Routing;

public class OutcomeWindowTests
{
    [Fact]
    public void Rate_CoversTheLastTenSeconds()
    {
        var window = new OutcomeWindow();
        window.Record(flagged: true, 100);
        window.Record(flagged: false, 100);
        window.Record(flagged: false, 105);
        window.Record(flagged: false, 105);

        Assert.Equal(0.25, window.Rate(105));
        Assert.Equal(0.25, window.Rate(109));
        Assert.Equal(0.0, window.Rate(110)); // second 100 left the window
        Assert.Equal((0, 0), window.Counts(200));
    }

    [Fact]
    public void RetryBudget_AllowsAboutTheRatioPlusTheFloor_ThenRecovers()
    {
        var time = new FakeTimeProvider();
        var budget = new RetryBudget(time);
        for (var i = 0; i < 100; i++)
        {
            budget.OnRequest();
        }

        var spent = 0;
        while (budget.TrySpend(0.2) && spent < 1000)
        {
            spent++;
        }

        Assert.Equal(30, spent); // 20% of 100, plus the floor of 10
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(budget.CanRetry(0.2));
    }

    [Fact]
    public void Backoff_GrowsExponentiallyWithinJitterAndCap()
    {
        var retries = new RetryModel(5, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(300), 0.2);
        var random = new Random(1);
        for (var i = 0; i < 100; i++)
        {
            Assert.InRange(Backoff.Delay(1, retries, random).TotalMilliseconds, 25, 50);
            Assert.InRange(Backoff.Delay(3, retries, random).TotalMilliseconds, 100, 200);
            Assert.InRange(Backoff.Delay(9, retries, random).TotalMilliseconds, 150, 300);
        }
    }
}
