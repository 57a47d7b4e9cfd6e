using AotProxy.Admin.Contracts;
using AotProxy.Admin.Dashboard;

namespace AotProxy.Tests.Admin;

public class WorkerHistoryTests
{
    [Fact]
    public void Report_All_GivesTheLastCapacitySamplesOldestFirst_AndNewestOnlyOtherwise()
    {
        var history = new WorkerHistory(capacity: 4);
        for (var second = 100; second < 106; second++)
        {
            history.Sample(second, [Worker("w", inFlight: second - 100, running: second - 90)]);
        }

        var all = Assert.Single(history.Report(all: true));
        Assert.Equal("w", all.Name);
        Assert.Equal(105, all.LastSecond);
        Assert.Equal([2, 3, 4, 5], all.InFlight);
        Assert.Equal([12.0, 13.0, 14.0, 15.0], all.Running.Select(v => v!.Value));

        var newest = Assert.Single(history.Report(all: false));
        Assert.Equal([5], newest.InFlight);
        Assert.Equal(105, newest.LastSecond);
    }

    [Fact]
    public void Sample_StaleScrapeIsNull_AndAWorkerGoneLosesItsHistory()
    {
        var history = new WorkerHistory(capacity: 8);
        history.Sample(1, [Worker("a", 1, running: 3, fresh: false), Worker("b", 2, running: 4)]);
        history.Sample(2, [Worker("b", 5, running: 6)]);

        var b = Assert.Single(history.Report(all: true));
        Assert.Equal("b", b.Name);
        Assert.Equal([2, 5], b.InFlight);

        history.Sample(3, [Worker("a", 7, running: 3, fresh: false)]);
        var a = Assert.Single(history.Report(all: true));
        Assert.Equal([7], a.InFlight);
        Assert.Null(a.Running[0]);
        Assert.Null(a.Kv[0]);
    }

    internal static WorkerReport Worker(string name, int inFlight, double running, bool fresh = true, double kv = 0.5) => new(
        name, "http://127.0.0.1:1/", ["m"], false, true, false, "healthy", "closed", inFlight, 8, 8, inFlight, 1, 0,
        new ScrapeReport("ok", fresh, 0.1, running, 0, kv, null), 0, null, null, null);
}
