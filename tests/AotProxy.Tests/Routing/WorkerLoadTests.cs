namespace AotProxy.Tests.Routing;

public class WorkerLoadTests
{
    [Fact]
    public void Load_CountsRequestsSentSinceTheScrapeOnlyWhileTheyAreInFlight()
    {
        var test = new TestPool(1);
        test.Scrape(0, running: 2, waiting: 1);
        var worker = test.Workers[0];
        test.InFlight(0, 3);
        Assert.Equal(4, worker.Load(test.Routing.StaleAfter).Waiting);

        // Finished before the next scrape: in neither the gauges nor the worker's queue any more.
        worker.OnRequestEnd();
        worker.OnRequestEnd();
        worker.OnRequestEnd();
        Assert.Equal(1, worker.Load(test.Routing.StaleAfter).Waiting);

        test.InFlight(0, 2);
        test.Scrape(0, running: 2, waiting: 0);
        Assert.Equal(0, worker.Load(test.Routing.StaleAfter).Waiting); // the scrape has seen them
    }

    [Fact]
    public void Load_StaleGauges_UseInFlightAgainstMaxConcurrency()
    {
        var test = new TestPool(1);
        test.InFlight(0, 40); // max_concurrency 32

        var load = test.Workers[0].Load(test.Routing.StaleAfter);

        Assert.False(load.Fresh);
        Assert.Equal((8.0, 32.0, 1.0), (load.Waiting, load.Running, load.KvUsage));
    }
}
