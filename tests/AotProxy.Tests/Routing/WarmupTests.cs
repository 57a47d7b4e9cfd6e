using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Routing;

// [routing] warmup: which workers wait for the monitor's warm-up request before they take traffic.
public class WarmupTests
{
    [Fact]
    public void Build_WithWarmup_NewWorkersWarmFirst_AndOnesThatCarryOverDoNot()
    {
        var registry = new WorkerRegistry(TimeProvider.System, warmsUp: true);
        var a = Snapshots.Worker("a", "http://127.0.0.1:1/", "m");
        var b = Snapshots.Worker("b", "http://127.0.0.1:2/", "m");
        var routing = Snapshots.Defaults.Routing with { Warmup = true };
        var first = registry.Build(Snapshots.Create([a], routing: routing), WorkerSet.Empty);
        Assert.True(first.Workers[0].Warming);
        Assert.False(first.Workers[0].IsRoutable(Snapshots.Defaults.CircuitBreaker));
        first.Workers[0].Warmed(); // the monitor's warm-up answered

        var second = registry.Build(Snapshots.Create([a, b], routing: routing), first);

        Assert.Same(first.Workers[0], second.Workers[0]);
        Assert.False(second.Workers[0].Warming);
        Assert.True(second.Workers[1].Warming);
    }

    [Fact]
    public void Build_WarmupOff_OrNoMonitor_NobodyWarms()
    {
        var a = Snapshots.Worker("a", "http://127.0.0.1:1/", "m");
        var off = new WorkerRegistry(TimeProvider.System, warmsUp: true).Build(Snapshots.Create([a], routing: Snapshots.Defaults.Routing with { Warmup = false }), WorkerSet.Empty);
        var noMonitor = new WorkerRegistry(TimeProvider.System).Build(Snapshots.Create([a], routing: Snapshots.Defaults.Routing with { Warmup = true }), WorkerSet.Empty);

        Assert.False(off.Workers[0].Warming);
        Assert.False(noMonitor.Workers[0].Warming);
    }

    [Fact]
    public void Build_AReloadThatTurnsWarmupOff_EndsTheWait_AndOneThatTurnsItOn_WarmsOnlyNewWorkers()
    {
        var registry = new WorkerRegistry(TimeProvider.System, warmsUp: true);
        var a = Snapshots.Worker("a", "http://127.0.0.1:1/", "m");
        var b = Snapshots.Worker("b", "http://127.0.0.1:2/", "m");
        var on = Snapshots.Defaults.Routing with { Warmup = true };
        var first = registry.Build(Snapshots.Create([a], routing: on), WorkerSet.Empty);
        Assert.True(first.Workers[0].Warming);

        var off = registry.Build(Snapshots.Create([a], routing: on with { Warmup = false }), first);
        Assert.False(off.Workers[0].Warming);
        off.Workers[0].Recovered();
        Assert.False(off.Workers[0].Warming); // warm-up is off: a recovery waits for nothing

        var again = registry.Build(Snapshots.Create([a, b], routing: on), off);
        Assert.False(again.Workers[0].Warming); // it did not join again
        Assert.True(again.Workers[1].Warming);
    }

    [Fact]
    public void Complete_ABreakerThatOpens_KeepsItsWorkerOutAfterOpenTimeout_UntilItWarmsUp()
    {
        var test = new TestPool(1).With(r => r with { Warmup = true });
        var router = new Router(test.Time, test.Random, NullLogger.Instance);
        var worker = test.Workers[0];
        worker.WarmsUp = true; // as WorkerRegistry sets it under [routing] warmup with a monitor
        var breaker = test.Snapshot.CircuitBreaker;

        for (var i = 0; i < breaker.FailureThreshold; i++)
        {
            router.Complete(worker, worker.Breaker.TryAcquire(breaker), AttemptOutcome.UpstreamFailed, null, TimeSpan.Zero, 0, test.Snapshot);
        }

        test.Time.Advance(breaker.OpenTimeout);
        Assert.True(worker.Breaker.AllowsTraffic(breaker)); // its breaker would let trials through
        Assert.True(worker.Warming);
        Assert.False(worker.IsRoutable(breaker));   // but the warm-up goes first

        worker.Warmed();
        Assert.True(worker.IsRoutable(breaker));
    }
}
