using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Routing;

// The adaptation rule, one scrape at a time on a manual clock: max_concurrency 32 unless a test
// says otherwise, adaptive_min 0.5 and adaptive_max 1.5 (bounds 16..48).
public class AdaptiveSlotsTests
{
    private static readonly SchedulerModel On = Snapshots.Defaults.Scheduler with { AdaptiveSlots = true };
    private static readonly SchedulerModel Off = Snapshots.Defaults.Scheduler;

    [Fact]
    public void Defaults_AreOff_WithHalfAndOneAndAHalf()
    {
        Assert.Equal((false, 0.5, 1.5), (Off.AdaptiveSlots, Off.AdaptiveMin, Off.AdaptiveMax));
    }

    [Fact]
    public void Waiting_OnTwoScrapesInARow_ShrinksByATenthEachScrape()
    {
        var test = new TestPool(1);

        Assert.Equal(32, Scrape(test, waiting: 3)); // one scrape: maybe a burst
        Assert.Equal(28, Scrape(test, waiting: 3)); // floor(32 x 0.9)
        Assert.Equal(25, Scrape(test, waiting: 1)); // floor(28 x 0.9)
        Assert.Equal(25, Slots(test));
    }

    [Fact]
    public void Waiting_OnAlternateScrapes_NeverShrinks()
    {
        var test = new TestPool(1);

        for (var i = 0; i < 6; i++)
        {
            Scrape(test, waiting: i % 2 == 0 ? 5 : 0);
        }

        Assert.Equal(32, Slots(test));
    }

    [Fact]
    public void Shrinking_TakesAtLeastOneSlot_AndStopsAtTheLowerBound()
    {
        var test = Single(maxConcurrency: 5); // bounds: max(1, floor(2.5)) = 2 .. ceil(7.5) = 8

        var seen = Enumerable.Range(0, 6).Select(_ => Scrape(test, waiting: 2)).ToArray();

        Assert.Equal([5, 4, 3, 2, 2, 2], seen);
    }

    [Fact]
    public void Shrinking_KeepsAtLeastOneSlot_EvenWhenTheShareRoundsToZero()
    {
        var test = Single(maxConcurrency: 3); // floor(0.1 x 3) = 0: the bound is 1
        var scheduler = On with { AdaptiveMin = 0.1 };

        for (var i = 0; i < 6; i++)
        {
            Scrape(test, waiting: 4, scheduler: scheduler);
        }

        Assert.Equal(1, test.Workers[0].Slots(scheduler, test.Routing.StaleAfter));
    }

    [Fact]
    public void LongQueue_SettlesAtHalfOfMaxConcurrency()
    {
        var test = new TestPool(1);

        for (var i = 0; i < 20; i++)
        {
            Scrape(test, waiting: 10);
        }

        Assert.Equal(16, Slots(test));
    }

    [Fact]
    public void AllSlotsInUse_NoQueue_KvHeadroom_GrowsByOneUpToTheUpperBound()
    {
        var test = new TestPool(1);
        test.InFlight(0, 60);

        Assert.Equal(33, Scrape(test, waiting: 0, kv: 0.5));
        Assert.Equal(34, Scrape(test, waiting: 0, kv: 0.5));
        for (var i = 0; i < 20; i++)
        {
            Scrape(test, waiting: 0, kv: 0.5);
        }

        Assert.Equal(48, Slots(test)); // ceil(32 x 1.5)
    }

    [Fact]
    public void Growth_NeedsEverySlotInUse()
    {
        var test = new TestPool(1);
        test.InFlight(0, 31);

        Assert.Equal(32, Scrape(test, waiting: 0, kv: 0.1));
        test.InFlight(0, 1);
        Assert.Equal(33, Scrape(test, waiting: 0, kv: 0.1));
        Assert.Equal(33, Scrape(test, waiting: 0, kv: 0.1)); // 32 in flight, 33 slots: no proof of more
    }

    [Theory]
    [InlineData(0.8)]
    [InlineData(0.95)]
    public void Growth_StopsAtKvUsageOfEightyPercent(double kv)
    {
        var test = new TestPool(1);
        test.InFlight(0, 40);

        Assert.Equal(32, Scrape(test, waiting: 0, kv: kv));
    }

    [Fact]
    public void Growth_NeedsAKvReading()
    {
        var test = new TestPool(1);
        test.InFlight(0, 40);

        test.Workers[0].OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Running | VllmMetricFields.Waiting, Running = 32 }, On, test.Routing.StaleAfter);

        Assert.Equal(32, Slots(test));
    }

    [Fact]
    public void Idle_AfterAQueue_RecoversOneSlotPerScrape_ToMaxConcurrencyAndNoFurther()
    {
        var test = new TestPool(1);
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);
        Assert.Equal(25, Slots(test));

        var seen = Enumerable.Range(0, 10).Select(_ => Scrape(test, waiting: 0, kv: 0.1)).ToArray();

        Assert.Equal([26, 27, 28, 29, 30, 31, 32, 32, 32, 32], seen);
    }

    [Fact]
    public void Recovery_HoldsWhileKvIsNearlyFull()
    {
        var test = new TestPool(1);
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);

        Assert.Equal(28, Scrape(test, waiting: 0, kv: 0.9));
    }

    [Fact]
    public void NoWaitingGauge_Holds()
    {
        var test = new TestPool(1);
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);

        test.Workers[0].OnScraped(default(VllmMetrics) with { Present = VllmMetricFields.Running | VllmMetricFields.KvCacheUsage, Running = 3, KvCacheUsage = 0.1 }, On, test.Routing.StaleAfter);
        Assert.Equal(28, Slots(test));

        Scrape(test, waiting: 3); // the gap broke the run: one waiting scrape is not yet a queue
        Assert.Equal(28, Slots(test));
    }

    [Fact]
    public void Off_SlotsAreMaxConcurrency_AndTurningOffForgetsWhatWasLearned()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);
        Assert.Equal(28, Slots(test));
        Assert.Equal(32, worker.Slots(Off, test.Routing.StaleAfter));

        Scrape(test, waiting: 3, scheduler: Off);
        Assert.Equal(32, Slots(test)); // reset, not just hidden
        Assert.Equal(32, Scrape(test, waiting: 3)); // and the run of waiting scrapes starts over
    }

    [Fact]
    public void StaleScrape_SlotsAreMaxConcurrency_AndTheNextFreshOneStartsFromIt()
    {
        var test = new TestPool(1);
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);
        Assert.Equal(28, Slots(test));

        test.Time.Advance(test.Routing.StaleAfter);
        Assert.Equal(28, Slots(test)); // exactly staleAfter old: still fresh
        test.Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(32, Slots(test));

        Assert.Equal(32, Scrape(test, waiting: 3)); // from max_concurrency, with a new run
    }

    [Fact]
    public void FailedScrapes_AgeIntoMaxConcurrency()
    {
        var test = new TestPool(1);
        Scrape(test, waiting: 3);
        Scrape(test, waiting: 3);

        for (var i = 0; i < 4; i++)
        {
            test.Workers[0].OnScrapeFailed("timeout");
            test.Time.Advance(test.Routing.MetricsInterval);
        }

        Assert.Equal(32, Slots(test));
    }

    [Fact]
    public void Reload_ChangingMaxConcurrency_ReclampsToTheNewBounds()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        test.InFlight(0, 100);
        for (var i = 0; i < 20; i++)
        {
            Scrape(test, waiting: 0, kv: 0.1);
        }

        Assert.Equal(48, Slots(test)); // 32 + 16

        worker.Update(worker.Model with { MaxConcurrency = 16 });
        Assert.Equal(24, Slots(test)); // 16 + 16, above ceil(16 x 1.5)
        Assert.Equal(24, Scrape(test, waiting: 0, kv: 0.1)); // and the next step starts from there
    }

    [Fact]
    public void Reload_AfterAQueue_KeepsWhatWasLearnedWithinTheNewBounds()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        for (var i = 0; i < 20; i++)
        {
            Scrape(test, waiting: 5);
        }

        Assert.Equal(16, Slots(test)); // 32 - 16

        worker.Update(worker.Model with { MaxConcurrency = 40 });
        Assert.Equal(24, Slots(test)); // 40 - 16

        worker.Update(worker.Model with { MaxConcurrency = 8 });
        Assert.Equal(4, Slots(test)); // 8 - 16, below floor(8 x 0.5)
    }

    [Fact]
    public void Reload_OfAWorkerThatNeverQueued_FollowsMaxConcurrency()
    {
        var test = new TestPool(1);
        var worker = test.Workers[0];
        Scrape(test, waiting: 0);
        Scrape(test, waiting: 0);

        worker.Update(worker.Model with { MaxConcurrency = 64 });

        Assert.Equal(64, Slots(test));
        Assert.Equal(64, Scrape(test, waiting: 0));
    }

    [Fact]
    public void PoolCapacity_SumsTheAdaptedSlotsOfRoutableWorkersOnly()
    {
        var test = new TestPool(3);
        Scrape(test, waiting: 3, worker: 0);
        Scrape(test, waiting: 3, worker: 0);
        Scrape(test, waiting: 0, worker: 1);
        Scrape(test, waiting: 0, worker: 2);
        var on = Snapshots.Create(scheduler: On);
        var off = Snapshots.Create(scheduler: Off);

        Assert.Equal(28 + 32 + 32, test.Pool.Capacity(on));
        Assert.Equal(3 * 32, test.Pool.Capacity(off));

        test.Workers[1].Draining = true;
        Assert.Equal(28 + 32, test.Pool.Capacity(on));
    }

    private static TestPool Single(int maxConcurrency)
    {
        var test = new TestPool(1);
        test.Workers[0].Update(test.Workers[0].Model with { MaxConcurrency = maxConcurrency });
        return test;
    }

    // One fresh scrape of worker i, a scrape interval after the last; returns its slots after it.
    private static int Scrape(TestPool test, double waiting, double kv = 0.1, SchedulerModel? scheduler = null, int worker = 0)
    {
        scheduler ??= On;
        test.Time.Advance(test.Routing.MetricsInterval);
        var metrics = default(VllmMetrics) with { Present = VllmMetricFields.Load, Running = 8, Waiting = waiting, KvCacheUsage = kv };
        test.Workers[worker].OnScraped(metrics, scheduler, test.Routing.StaleAfter);
        return test.Workers[worker].Slots(scheduler, test.Routing.StaleAfter);
    }

    private static int Slots(TestPool test) => test.Workers[0].Slots(On, test.Routing.StaleAfter);
}
