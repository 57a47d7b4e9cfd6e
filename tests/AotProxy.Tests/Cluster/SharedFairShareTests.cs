using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Tests.Admission;
using StackExchange.Redis;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Cluster;

// Fair share fleet-wide on one real redis-server: two replicas' admission for one model (each an
// AdmissionHarness, on its own manual clock, with its own connection and SharedFairShare), flushed
// when the test says so. Counters are micro-tokens per weight.
public sealed class SharedFairShareTests : IAsyncLifetime
{
    private const double Micro = 1_000_000;

    private TwoReplicaStore _store = null!;

    public async Task InitializeAsync() => _store = await TwoReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    // Both replicas charge tenant a: the grant's estimate, then the settlement's difference (a
    // refund on one, a charge on the other); b waits on two. The fleet's counter is the sum of the
    // exact costs, and the backlog says who waits where until it stops.
    [Fact]
    public async Task Counters_FromTwoReplicas_SumToTheExactCost_RefundsIncluded_AndTheBacklogFollowsTheWaiters()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        var a = Tenant("a", cls, weight: 2);
        var b = Tenant("b", cls, weight: 1);

        var onA = await Turned(await one.Admit(a, cls, promptTokens: 100));
        onA.Release(new Usage(30, 5)); // 30 + 2 x 5 = 40 for an estimate of 100: 60 back
        var twoA = await Turned(await two.Admit(a, cls, promptTokens: 50));
        var waitingB = two.Admit(b, cls, promptTokens: 70);
        Assert.False(waitingB.IsCompleted);
        await oneShare.FlushAsync();
        await twoShare.FlushAsync();

        var db = _store.One.GetDatabase();
        Assert.Equal((40 + 50) / 2.0 * Micro, (double)await db.HashGetAsync("aotproxy:vtc:m", "a"));
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:backlog:m", "two|b"));
        Assert.Equal(["b"], twoShare.Attach(two.Model).Backlogged.Select(t => t.Key));

        twoA.Release(new Usage(80, 10)); // 80 + 2 x 10 = 100 for an estimate of 50: 50 more
        var grantedB = await Settle(waitingB);
        Assert.Equal(AdmissionDecision.Granted, grantedB.Decision);
        var turnedB = await Turned(grantedB);
        await twoShare.FlushAsync();

        Assert.Equal((40 + 100) / 2.0 * Micro, (double)await db.HashGetAsync("aotproxy:vtc:m", "a"));
        Assert.Equal(70 * Micro, (double)await db.HashGetAsync("aotproxy:vtc:m", "b"));
        Assert.False(await db.HashExistsAsync("aotproxy:backlog:m", "two|b"));
        Assert.Empty(twoShare.Attach(two.Model).Backlogged);
        turnedB.Release(null);
    }

    // Tenant big (weight 3) reaches only replica one, small (weight 1) only replica two, both
    // always backlogged, every request 100 tokens, one slot each. Alone each replica would serve
    // one request per round: 1:1 in requests, 1:3 in service per weight (a gap of 2,667 per weight
    // after small's 40th). Sharing the counters, the replica whose tenant is ahead leaves its slot,
    // and the service per weight stays within the grant rule's slack (256 tokens / small's weight
    // 1) of each other, plus one request in flight each.
    [Fact]
    public async Task BackloggedTenantsOnDifferentReplicas_AreServedByWeight_WithinTheSlack()
    {
        const int Requests = 400;
        const int Cost = 100;
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        var big = Tenant("big", cls, weight: 3);
        var small = Tenant("small", cls, weight: 1);
        var onOne = new Queue<Task<AdmissionResult>>(Enumerable.Range(0, Requests).Select(_ => one.Admit(big, cls, promptTokens: Cost)));
        var onTwo = new Queue<Task<AdmissionResult>>(Enumerable.Range(0, Requests).Select(_ => two.Admit(small, cls, promptTokens: Cost)));
        var servedBig = 0;
        var servedSmall = 0;

        // Each round: both flush (which dispatches what the fleet now allows), then each replica
        // finishes the request it runs, if its grant came (a release dispatches the next).
        for (var round = 0; round < 1200 && servedSmall < 40; round++)
        {
            await oneShare.FlushAsync();
            await twoShare.FlushAsync();
            await Task.WhenAny(onOne.Peek(), onTwo.Peek()).WaitAsync(TimeSpan.FromSeconds(10));
            servedBig += await Finish(onOne, Cost);
            servedSmall += await Finish(onTwo, Cost);
        }

        var gap = Math.Abs((servedBig * Cost / 3.0) - (servedSmall * Cost / 1.0));
        Assert.True(servedSmall >= 40, $"small served {servedSmall}");
        Assert.True(gap <= (SharedVtc.SlackMicro / Micro) + (2 * Cost), $"big served {servedBig}, small {servedSmall}: a gap of {gap} per weight");
        Assert.True(twoShare.Attach(two.Model).Deferred > 0, "small's replica left slots to big's");
    }

    // Replica two's tenant is more than the slack ahead of one's backlogged tenant: two leaves
    // its slot. Once two's view is two flush intervals old (no flush answered since), two
    // decides alone.
    [Fact]
    public async Task AReplicaBehindStaleData_DecidesAloneAfterTwoFlushIntervals()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        var ahead = Tenant("ahead", cls);
        var behind = Tenant("behind", cls);
        var holdOne = await one.Admit(behind, cls, promptTokens: 1);
        var waitingOne = one.Admit(behind, cls, promptTokens: 1); // behind is backlogged on one
        await oneShare.FlushAsync();
        (await Turned(await two.Admit(ahead, cls, promptTokens: 2000))).Release(new Usage(2000, 0));
        var second = await Turned(await two.Admit(ahead, cls, promptTokens: 1000));
        var waitingTwo = two.Admit(ahead, cls, promptTokens: 1000);
        await twoShare.FlushAsync(); // ahead: 3,000 per weight, behind: 1
        var vtc = twoShare.Attach(two.Model);
        var deferred = vtc.Deferred;

        second.Release(new Usage(1000, 0)); // two's slot is free, but ahead is 2,999 ahead (more than the slack)
        Assert.True(vtc.Deferred > deferred, "two asked the fleet and was told to leave its slot");
        Assert.Equal((1, 1), (two.Model.Slots.Free, two.Model.Waiting)); // left free, its waiter still queued

        two.Time.Advance(2 * SharedFairShare.Interval + TimeSpan.FromMilliseconds(1));
        two.Model.Dispatch();
        Assert.Equal(AdmissionDecision.Granted, (await Settle(waitingTwo)).Decision);

        holdOne.Lease.Release(null);
        (await Settle(waitingOne)).Lease.Release(null);
        (await waitingTwo).Lease.Release(null);
    }

    // A request granted on two while two knew nothing of the fleet (its tenant `ahead` 3,000 per
    // weight ahead of `behind`, backlogged on one) waits for its turn on the fleet's workers, and
    // counts as backlogged there; once a flush shows behind within the slack, the turn is given.
    // Released without usage (no worker served it), its charge comes back whole to the fleet.
    [Fact]
    public async Task ATurnWaitsWhileItsTenantIsAheadFleetWide_AndItsChargeComesBackWithoutUsage()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        var ahead = Tenant("ahead", cls);
        var behind = Tenant("behind", cls);
        (await Turned(await one.Admit(ahead, cls, promptTokens: 3000))).Release(new Usage(3000, 0));
        var holdOne = await one.Admit(behind, cls, promptTokens: 2900);
        var waitingOne = one.Admit(behind, cls, promptTokens: 1);
        await oneShare.FlushAsync(); // ahead: 3,000; behind: 0, backlogged
        var granted = await two.Admit(ahead, cls, promptTokens: 10); // two has no answer yet: alone
        await twoShare.FlushAsync();
        var vtc = twoShare.Attach(two.Model);
        var deferred = vtc.Deferred;

        var turn = granted.Lease.FleetTurnAsync(TimeSpan.FromMinutes(1), CancellationToken.None).AsTask();
        await twoShare.FlushAsync();
        Assert.False(turn.IsCompleted);
        Assert.Equal(deferred + 1, vtc.Deferred);
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:backlog:m", "two|ahead"));

        var heldOne = await Turned(holdOne); // behind: 2,900, within the slack (256) of ahead's 3,000
        await oneShare.FlushAsync();
        await twoShare.FlushAsync();
        Assert.True(await turn.WaitAsync(TimeSpan.FromSeconds(10)));
        await twoShare.FlushAsync(); // the turn's charge, made when the last answer came
        Assert.Equal(3010 * Micro, (double)await _store.One.GetDatabase().HashGetAsync("aotproxy:vtc:m", "ahead"));

        granted.Lease.LeftForSlot();
        granted.Lease.Turned.Release(null);
        await twoShare.FlushAsync();
        Assert.Equal(3000 * Micro, (double)await _store.One.GetDatabase().HashGetAsync("aotproxy:vtc:m", "ahead"));
        Assert.False(await _store.One.GetDatabase().HashExistsAsync("aotproxy:backlog:m", "two|ahead"));

        heldOne.Release(null);
        (await Settle(waitingOne)).Lease.Release(null);
    }

    // A turn waits at most two flush intervals without an answer: the replica then decides alone,
    // as its grants do.
    [Fact]
    public async Task ATurnWithoutAFreshAnswer_IsGivenAfterTwoFlushIntervals()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        var ahead = Tenant("ahead", cls);
        (await Turned(await one.Admit(ahead, cls, promptTokens: 3000))).Release(new Usage(3000, 0));
        var holdOne = await one.Admit(Tenant("behind", cls), cls, promptTokens: 1);
        var waitingOne = one.Admit(Tenant("behind", cls), cls, promptTokens: 1);
        await oneShare.FlushAsync();
        var granted = await two.Admit(ahead, cls, promptTokens: 10);
        await twoShare.FlushAsync();
        var turn = granted.Lease.FleetTurnAsync(TimeSpan.FromMinutes(1), CancellationToken.None).AsTask();
        Assert.False(turn.IsCompleted);

        two.Time.Advance(2 * SharedFairShare.Interval + TimeSpan.FromMilliseconds(1));
        Assert.True(await turn.WaitAsync(TimeSpan.FromSeconds(10)));

        granted.Lease.LeftForSlot();
        granted.Lease.Turned.Release(new Usage(10, 0));
        holdOne.Lease.Release(null);
        (await Settle(waitingOne)).Lease.Release(null);
    }

    // x reaches both replicas, y only one. On one, x is the locally fairest (it has used little
    // there) but far ahead fleet-wide; y is the fleet's least-served. One must not stop at x and
    // leave the slot to nobody: it grants y, the tenant the fleet is waiting for.
    [Fact]
    public async Task ALocallyFairestTenantAheadFleetWide_GivesTheSlotToTheFleetsLeastServedTenantOnTheSameReplica()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        var x = Tenant("x", cls);
        var y = Tenant("y", cls);
        (await Turned(await two.Admit(x, cls, promptTokens: 3000))).Release(new Usage(3000, 0));
        await twoShare.FlushAsync(); // x: 3,000 fleet-wide, none of it on one
        (await Turned(await one.Admit(y, cls, promptTokens: 100))).Release(new Usage(100, 0));
        var holder = await one.Admit(Tenant("z", cls), cls, promptTokens: 0);
        var waitingX = one.Admit(x, cls, promptTokens: 10); // locally 0: lifted to the last granted, z's
        var waitingY = one.Admit(y, cls, promptTokens: 10); // locally 100
        await oneShare.FlushAsync();

        holder.Lease.Release(null);
        var granted = await Settle(waitingY);
        Assert.Equal(AdmissionDecision.Granted, granted.Decision);

        (await Turned(granted)).Release(new Usage(10, 0));
        await oneShare.FlushAsync(); // y waits no more: x is the only backlogged tenant
        Assert.Equal(AdmissionDecision.Granted, (await Settle(waitingX)).Decision);
    }

    // c becomes backlogged (on two) while d waits (on one) with 500 per weight of service: c is
    // lifted to d's counter, as the local counters lift a tenant back from idle.
    [Fact]
    public async Task ATenantBackloggedFleetWide_IsLiftedToTheLeastBackloggedCounter()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var (two, twoShare) = Replica(_store.Two, "two");
        var cls = Class();
        (await Turned(await one.Admit(Tenant("d", cls), cls, promptTokens: 500))).Release(new Usage(500, 0));
        var holdOne = await one.Admit(Tenant("e", cls), cls, promptTokens: 0);
        var waitingD = one.Admit(Tenant("d", cls), cls, promptTokens: 1);
        await oneShare.FlushAsync();
        var holdTwo = await two.Admit(Tenant("f", cls), cls, promptTokens: 0);
        var waitingC = two.Admit(Tenant("c", cls), cls, promptTokens: 1);
        await twoShare.FlushAsync();

        Assert.Equal(500 * Micro, (double)await _store.One.GetDatabase().HashGetAsync("aotproxy:vtc:m", "c"));

        holdOne.Lease.Release(null);
        holdTwo.Lease.Release(null);
        (await Settle(waitingD)).Lease.Release(null);
        (await Settle(waitingC)).Lease.Release(null);
    }

    // A replica that has not flushed for 1 s (Redis's clock) is dead or cut off: the next flush of
    // any replica drops its backlog; a live one's stays.
    [Fact]
    public async Task ABacklogOfAReplicaSilentForOneSecond_IsDroppedByTheNextFlush()
    {
        var (one, oneShare) = Replica(_store.One, "one");
        var db = _store.One.GetDatabase();
        var now = (long)await db.ScriptEvaluateAsync("local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)");
        await db.HashSetAsync("aotproxy:backlog:m", [new("ghost|g", 1), new("ghost|", now - 5000), new("live|h", 2), new("live|", now)]);
        await db.HashSetAsync("aotproxy:vtc:m", "h", 7);

        await oneShare.FlushAsync();

        var left = (await db.HashGetAllAsync("aotproxy:backlog:m")).Select(e => (string)e.Name!).Order(StringComparer.Ordinal);
        Assert.Equal(["live|", "live|h", "one|"], left);
        Assert.Equal([new KeyValuePair<string, long>("h", 7)], oneShare.Attach(one.Model).Backlogged);
    }

    // Charge as tokens stream, fleet-wide: each content chunk relayed after the request's turn
    // adds to the tenant's fleet counter here at once (the grant rule reads it), and the next
    // flush carries all of them in its one script call: no Redis call per chunk. The settlement
    // takes the fleet's counter to exactly the usage's cost in micro-tokens per weight (weight 3:
    // every chunk's 2/3 is a rounding), with or without a lookahead; a client that left
    // mid-stream (estimated usage) is charged the prompt estimate and the chunks relayed.
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    public async Task StreamedChunks_ChargeTheFleetCounter_OneFlushForManyChunks_AndSettleToExactlyTheCost(double lookahead)
    {
        var admission = new AdmissionHarness(capacity: 1, lookahead: lookahead);
        var share = new SharedFairShare(() => _store.One, () => "one", SharedFairShare.Interval, admission.Time);
        var vtc = share.Attach(admission.Model);
        var cls = Class();
        var a = Tenant("a", cls, weight: 3);
        var db = _store.One.GetDatabase();
        async Task<long> OnRedis() => (long)await db.HashGetAsync("aotproxy:vtc:m", "a");
        var prepaid = lookahead * 20;

        var lease = await Turned(await admission.Admit(a, cls, promptTokens: 100, maxTokens: 20));
        var streamed = new StreamedCharge();
        lease.StartStream(streamed);
        await share.FlushAsync();
        Assert.Equal(SharedVtc.ToMicro((100 + (2 * prepaid)) / 3), await OnRedis());

        for (var chunk = 0; chunk < 25; chunk++)
        {
            streamed.Charge(1);
        }

        var afterChunks = SharedVtc.ToMicro((100 + (2 * 25)) / 3.0);
        Assert.Equal(afterChunks, vtc.Tenant("a").Counter);
        Assert.Equal(SharedVtc.ToMicro((100 + (2 * prepaid)) / 3), await OnRedis()); // not one call yet
        await share.FlushAsync();
        Assert.Equal(afterChunks, await OnRedis());

        lease.Release(new Usage(37, 31), streamed.Chunks);
        streamed.End();
        await share.FlushAsync();
        var first = SharedVtc.ToMicro((37 + (2 * 31)) / 3.0);
        Assert.Equal(first, await OnRedis());

        var left = await Turned(await admission.Admit(a, cls, promptTokens: 100, maxTokens: 20));
        left.StartStream(streamed);
        streamed.Charge(4);
        left.Release(Usage.Estimate(100, 4), streamed.Chunks);
        streamed.End();
        await share.FlushAsync();
        Assert.Equal(first + SharedVtc.ToMicro((100 + (2 * 4)) / 3.0), await OnRedis());
    }

    // As ForwardingStage: the granted request's turn on the fleet's workers (the grant rule's
    // data has not changed since the grant, so it is given at once), then a worker's slot at once.
    private static async Task<AdmissionLease> Turned(AdmissionResult granted)
    {
        Assert.True(granted.Lease.IsHeld, granted.Decision.ToString());
        Assert.True(await granted.Lease.FleetTurnAsync(TimeSpan.Zero, CancellationToken.None), "the fleet gave its turn");
        granted.Lease.LeftForSlot();
        return granted.Lease.Turned;
    }

    private static async Task<int> Finish(Queue<Task<AdmissionResult>> requests, long cost)
    {
        if (requests.Count == 0 || !requests.Peek().IsCompleted)
        {
            return 0;
        }

        (await Turned(await requests.Dequeue())).Release(new Usage(cost, 0));
        return 1;
    }

    private static (AdmissionHarness Admission, SharedFairShare Share) Replica(ConnectionMultiplexer redis, string name)
    {
        var admission = new AdmissionHarness(capacity: 1);
        var share = new SharedFairShare(() => redis, () => name, SharedFairShare.Interval, admission.Time);
        share.Attach(admission.Model);
        return (admission, share);
    }
}
