using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Caching;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Limits;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Gateway;

// Issue 15, item 2: one component applies a snapshot to all state and publishes the config with
// its workers as one view; capacity that changes between reloads reaches admission through the
// change that made it, with no timer (the fake clock here moves only when a test says so).
public sealed class GatewayStateTests : IAsyncDisposable
{
    private static readonly ClassModel Patient = Class(maxQueueWait: TimeSpan.FromHours(1));
    private static readonly TenantModel Acme = Tenant("acme", Patient);

    private readonly FakeTimeProvider _time = new();
    private readonly CapacitySignal _capacity;
    private readonly AdmissionController _admissions;
    private readonly HeapCompaction _compaction;

    public GatewayStateTests()
    {
        _capacity = new CapacitySignal(_time);
        var router = new Router(_time, new Random(7), NullLogger.Instance);
        _admissions = new AdmissionController(new WaiterPool(_time, 64), new GatewayTelemetry().Admission, _time, router, _capacity);
        _compaction = new HeapCompaction(_time, NullLogger.Instance);
    }

    public ValueTask DisposeAsync() => _compaction.DisposeAsync();

    [Fact]
    public void Apply_PublishesTheConfigWithTheWorkersBuiltForIt_AndLeavesTheViewBeforeAsItWas()
    {
        var a = Snapshots.Create([Worker("raw", 1, 4, "m-a")]);
        var b = Snapshots.Create([Worker("raw", 1, 4, "m-b")], revision: 2);
        var state = Create(a);
        var before = state.Current;

        state.Apply(b);

        var after = state.Current;
        Assert.Same(b, after.Config);
        Assert.Equal(["m-b"], after.Workers.Pools.Keys.ToArray());
        Assert.Same(before.Workers.Find("raw"), after.Workers.Find("raw")); // same name and URL: same state
        Assert.Same(a, before.Config);
        Assert.Equal(["m-a"], before.Workers.Pools.Keys.ToArray());
        Assert.True(after.Workers.HasServed("m-a"));
        Assert.True(before.Replaced.IsCancellationRequested);
        Assert.False(after.Replaced.IsCancellationRequested);
    }

    // A request that read the view before a reload renamed its model's pool away is still
    // admitted on the worker that serves it (the model keeps its last pool); a worker the
    // reload removed offers nothing.
    [Fact]
    public async Task Apply_APoolRenamedAway_StillAdmitsARequestThatStartedBefore_ARemovedWorkerOffersNothing()
    {
        var state = Create(Snapshots.Create([Worker("raw", 1, 4, "m-a")]));
        var pool = state.Current.Workers.Pools["m-a"];

        state.Apply(Snapshots.Create([Worker("raw", 1, 4, "m-b")], revision: 2));
        var admitted = await Admit(pool);

        Assert.Equal(AdmissionDecision.Admitted, admitted.Decision);
        Assert.Equal("raw", admitted.Slot.Worker?.Name);
        Release(admitted);

        state.Apply(Snapshots.Create([Worker("other", 2, 4, "m-b")], revision: 3));
        Assert.Equal(AdmissionDecision.NoCapacity, (await Admit(pool)).Decision);
    }

    // Both workers hold one slot; "away" is drained. The first request fills "busy", the second
    // waits; undraining "away" grants it there at once, while the first still holds its slot.
    [Fact]
    public async Task Undrain_WakesTheWaiterAtOnce()
    {
        var state = Create(Snapshots.Create([Worker("busy", 1, 1, "m"), Worker("away", 2, 1, "m")]));
        var away = state.Current.Workers.Find("away")!;
        away.Draining = true;
        var pool = state.Current.Workers.Pools["m"];
        var first = await Admit(pool);
        var waiting = Admit(pool);
        Assert.False(waiting.IsCompleted);

        away.Draining = false;

        var granted = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((AdmissionDecision.Granted, away), (granted.Decision, granted.Slot.Worker));
        Assert.True(first.Slot.IsHeld);
        Release(first);
        Release(granted);
    }

    // "away"'s breaker is open: nothing tells admission when open_timeout has passed but the
    // timer its opening set. The waiter gets "away"'s trial once the clock passes it.
    [Fact]
    public async Task BreakerOpenTimeoutPassing_WakesTheWaiter()
    {
        var snapshot = Snapshots.Create([Worker("busy", 1, 1, "m"), Worker("away", 2, 1, "m")]);
        var state = Create(snapshot);
        var away = state.Current.Workers.Find("away")!;
        for (var i = 0; i < snapshot.CircuitBreaker.FailureThreshold; i++)
        {
            away.Breaker.OnFailure(BreakerPermit.Normal, snapshot.CircuitBreaker);
        }

        var pool = state.Current.Workers.Pools["m"];
        var first = await Admit(pool);
        var waiting = Admit(pool);
        _time.Advance(snapshot.CircuitBreaker.OpenTimeout - TimeSpan.FromSeconds(1));
        Assert.False(waiting.IsCompleted);

        _time.Advance(TimeSpan.FromSeconds(2));

        var granted = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((AdmissionDecision.Granted, away, BreakerPermit.Trial), (granted.Decision, granted.Slot.Worker, granted.Slot.Permit));
        Release(first);
        Release(granted);
    }

    // The response cache's bounds come with each snapshot GatewayState applies (the first at its
    // start, then each reload's), not with each request: off at start stores nothing, a reload
    // that turns it on stores, one that turns it off empties it.
    [Fact]
    public void Apply_GivesTheResponseCacheEachSnapshotsBounds()
    {
        var responses = new ResponseCache(_time);
        var off = AotProxy.Tests.Configuration.TestConfig.Valid("[response_cache]\nenabled = false\n");
        var on = AotProxy.Tests.Configuration.TestConfig.Valid("[response_cache]\nenabled = true\n");
        var state = Create(off, responses);
        Assert.False(responses.Add(Answer(1)));

        state.Apply(on);
        Assert.True(responses.Add(Answer(2)));
        Assert.Equal(1, responses.Count);

        state.Apply(off);
        Assert.Equal((0, 0L), (responses.Count, responses.Bytes));
    }

    private GatewayState Create(GatewaySnapshot initial, ResponseCache? responses = null) =>
        new(initial, new WorkerRegistry(_time, _capacity), new TenantLimits(_time), _admissions, responses ?? new ResponseCache(_time), _compaction, NullLogger.Instance);

    private CachedResponse Answer(int key) =>
        new((UInt128)key, 200, "application/json", new byte[100], null, new Usage(5, 7), "m", _time.GetTimestamp());

    private Task<AdmissionResult> Admit(WorkerPool pool) =>
        _admissions.AdmitAsync(pool, Acme, Patient, 0, 10, 0, CancellationToken.None).AsTask();

    private static void Release(AdmissionResult result)
    {
        var slot = result.Slot;
        slot.Release();
        result.Lease.Release(null);
    }

    private static WorkerModel Worker(string name, int port, int maxConcurrency, string model) =>
        new(name, new Uri($"http://127.0.0.1:{port}/"), [model], maxConcurrency, 1, string.Empty);
}
