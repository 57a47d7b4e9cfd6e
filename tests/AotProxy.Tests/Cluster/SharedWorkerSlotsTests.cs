using System.Diagnostics;
using System.Text;
using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Gateway;
using AotProxy.Tests.Configuration;
using AotProxy.Identity;
using AotProxy.Routing;
using AotProxy.Threading;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace AotProxy.Tests.Cluster;

// A worker's max_concurrency over two replicas on one real redis-server: each plane is the data
// plane as GatewayHost wires it (DataPlaneHandler.Create with SharedWorkerSlots), with its own
// admission, worker state and connection, in front of one loopback worker that counts the
// requests it holds at once.
public sealed class SharedWorkerSlotsTests : IAsyncLifetime
{
    private const string Key = "sk-test-cluster";
    private const string Model = ClusterPlane.Model;
    private static readonly TimeSpan Heartbeat = TimeSpan.FromMilliseconds(200);

    private TwoReplicaStore _store = null!;

    public async Task InitializeAsync() => _store = await TwoReplicaStore.StartAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    // Alone, each replica would send max_concurrency: 2 x 2 at once. Together they hold 2, and
    // one's release lets the request waiting on two in.
    [Fact]
    public async Task TwoReplicas_NeverHoldMoreThanMaxConcurrencyTogether_AndAReleaseOnOneLetsTheOthersWaiterIn()
    {
        const int Max = 2;
        await using var worker = new GatedWorker();
        var snapshot = Snapshot(worker.Url, Max);
        await using var one = ClusterPlane.Start(snapshot, () => _store.One, "one", members: 2, sharedSlots: true);
        await using var two = ClusterPlane.Start(snapshot, () => _store.Two, "two", members: 2, sharedSlots: true);

        var first = Enumerable.Range(0, Max).Select(i => one.StatusAsync(Key, $"one-{i}")).ToList();
        await worker.Server.WaitUntilAsync(w => w.Requests == Max, "one's requests reached the worker");
        var second = Enumerable.Range(0, Max).Select(i => two.StatusAsync(Key, $"two-{i}")).ToList();

        // Both of two's requests hold a slot on two's worker and were refused by the store.
        Assert.True(await TestConfig.WaitUntil(() => two.Worker.SlotsTaken == Max && two.Worker.Shared is { Room: 0 }), $"two holds {two.Worker.SlotsTaken} slots, room {two.Worker.Shared?.Room}");
        Assert.Equal(Max, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));

        worker.Finish(1); // one of one's requests ends: its release wakes one of two's
        await worker.Server.WaitUntilAsync(w => w.Requests == Max + 1, "a request of two's reached the worker");
        worker.Finish(2 * Max);
        Assert.All(await Task.WhenAll(first.Concat(second)), status => Assert.Equal(200, status));

        Assert.Equal(2 * Max, worker.Server.Requests);
        Assert.Equal(Max, worker.MostAtOnce);
        Assert.True(await RunningIsZeroAsync(), "every grant was given back");
        Assert.Empty(await _store.One.GetDatabase().HashGetAllAsync("aotproxy:res:one"));
        Assert.Empty(await _store.One.GetDatabase().HashGetAllAsync("aotproxy:res:two"));
    }

    // A store that does not answer: each replica sends at most its share, max_concurrency / N.
    [Fact]
    public async Task StoreDown_EachReplicaTakesItsShareOfTheWorker()
    {
        const int Max = 4;
        await using var worker = new GatedWorker();
        var snapshot = Snapshot(worker.Url, Max, maxQueueWait: "300ms");
        await using var one = ClusterPlane.Start(snapshot, () => _store.One, "one", members: 2, sharedSlots: true);
        await _store.Server.StopAsync();
        Assert.True(await TestConfig.WaitUntil(() => !_store.One.IsConnected), "the client sees the store gone");

        var sent = Enumerable.Range(0, Max).Select(i => one.StatusAsync(Key, $"down-{i}")).ToList();
        await worker.Server.WaitUntilAsync(w => w.Requests == Max / 2, "the share reached the worker");

        // The other half waits for the share and gives up after max_queue_wait, held at the
        // gateway (both before the share's requests end, which would let a waiter in).
        var pending = sent.ToList();
        for (var i = 0; i < Max / 2; i++)
        {
            var refused = await Task.WhenAny(pending);
            pending.Remove(refused);
            Assert.Equal(503, await refused);
        }

        worker.Finish(Max);
        var all = await Task.WhenAll(sent);
        Assert.Equal(Max / 2, all.Count(s => s == 200));
        Assert.Equal(Max / 2, all.Count(s => s == 503));
        Assert.Equal(Max / 2, worker.MostAtOnce);
    }

    // A drain shared by one replica reaches the other by its message; one written with no
    // message (as if the message were lost) by the other's next heartbeat; an undrain likewise.
    [Fact]
    public async Task ADrainSharedByOne_DrainsTheWorkerOnTheOther_AndAHeartbeatAppliesOneWhoseMessageWasLost()
    {
        await using var worker = new GatedWorker();
        var snapshot = Snapshot(worker.Url, 2);
        await using var one = ClusterPlane.Start(snapshot, () => _store.One, "one", members: 2, sharedSlots: true);
        await using var two = ClusterPlane.Start(snapshot, () => _store.Two, "two", members: 2, sharedSlots: true);
        Assert.True(await TestConfig.WaitUntil(() => _store.Two.GetSubscriber().IsConnected()), "two is connected");

        Assert.True(await one.Slots!.ShareDrainAsync("w", drain: true));
        Assert.True(await TestConfig.WaitUntil(() => two.Worker.Draining), "two applies the drain");

        await _store.One.GetDatabase().HashSetAsync("aotproxy:worker:w", "drained", 0); // no message
        Assert.True(await TestConfig.WaitUntil(() => !two.Worker.Draining), "two's heartbeat applies the undrain");
    }

    // A release that comes between reading the count and waiting is not missed.
    [Fact]
    public async Task NextRelease_CompletesAtOnce_ForAReleaseSinceTheCountWasRead()
    {
        await using var slots = new SharedWorkerSlots(() => null, () => "one", () => 1, () => [], () => new CircuitBreakerModel(5, 2, TimeSpan.FromSeconds(30), 1, TimeSpan.FromSeconds(60)), Heartbeat, TimeProvider.System);
        var shared = new SharedWorker(slots, "w");
        var seen = shared.Releases;
        var pending = shared.NextRelease(seen);
        Assert.False(pending.IsCompleted);
        shared.Wake();
        await pending.WaitAsync(TimeSpan.FromSeconds(10));

        seen = shared.Releases;
        shared.Wake();
        Assert.True(shared.NextRelease(seen).IsCompleted);
    }

    // A release nobody waits for sends no message: the replicas (each subscribed to every
    // worker's release channel) would each receive and parse it for nothing. A marker published
    // after the release on the same connection arrives after anything the release published.
    [Fact]
    public async Task AReleaseNobodyWaitsFor_PublishesNothing()
    {
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10));
        var worker = Worker(maxConcurrency: 2);
        var heard = new List<string>();
        var marker = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _store.Two.GetSubscriber().SubscribeAsync(RedisChannel.Pattern("aotproxy:release:*"), (_, message) =>
        {
            lock (heard)
            {
                heard.Add((string)message!);
            }

            if (message == "marker")
            {
                marker.TrySetResult();
            }
        });

        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.FromSeconds(10), CancellationToken.None)).Grant);
        worker.Shared!.Release(SlotGrant.Shared);
        worker.Shared.GiveBackUnused(); // the slot the lease kept goes to the store
        await _store.One.GetDatabase().PublishAsync(RedisChannel.Literal("aotproxy:release:w"), "marker");
        await marker.Task.WaitAsync(TimeSpan.FromSeconds(10));

        lock (heard)
        {
            Assert.Equal(["marker"], heard);
        }

        Assert.Equal(0, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // ... yet a request refused on another replica (waiting for a slot) is woken by the release at
    // once: the heartbeat (10 minutes here), the other way it would learn of it, never comes.
    [Fact]
    public async Task AReleaseWakesARequestWaitingOnAnotherReplica_WithoutItsHeartbeat()
    {
        var heartbeat = TimeSpan.FromMinutes(10);
        await using var one = Slots(_store.One, "one", heartbeat);
        await using var two = Slots(_store.Two, "two", heartbeat);
        var onOne = Worker(maxConcurrency: 1);
        var onTwo = Worker(maxConcurrency: 1);
        Assert.True(await ReleaseListenersAsync(2), "both replicas listen for releases");

        var first = await one.AcquireAsync(onOne, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(SlotGrant.Shared, first.Grant);
        Assert.Equal(TimeSpan.Zero, first.Waited);
        var asked = Stopwatch.GetTimestamp();
        var waiting = two.AcquireAsync(onTwo, TimeSpan.FromMinutes(5), CancellationToken.None).AsTask();
        Assert.True(await TestConfig.WaitUntil(() => onTwo.Shared is { Room: 0 }), "two was refused");
        Assert.False(waiting.IsCompleted);

        onOne.Shared!.Release(SlotGrant.Shared);
        var second = await waiting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SlotGrant.Shared, second.Grant);

        // Its wait, which x-gateway-queue-ms counts: from its refusal to its grant, within the whole ask.
        Assert.InRange(second.Waited, TimeSpan.FromTicks(1), Stopwatch.GetElapsedTime(asked));
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // The grant goes by its hash (ClusterScript); a store restarted empty knows no script
    // (NOSCRIPT), and the grant still runs and counts.
    [Fact]
    public async Task AfterTheStoreRestartedEmpty_AGrantRunsAgain()
    {
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10));
        var worker = Worker(maxConcurrency: 2);
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.FromSeconds(10), CancellationToken.None)).Grant);

        await _store.Server.StopAsync();
        Assert.True(await TestConfig.WaitUntil(() => !_store.One.IsConnected), "the client sees the store gone");
        await _store.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(() => _store.One.IsConnected, TimeSpan.FromSeconds(30)), "the client reconnects");

        Assert.Equal(SharedTakeOutcome.Taken, await one.TryGrantAsync(worker.Shared!, 2));
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // Far from full, a replica takes a block of the worker's slots in one grant and uses them
    // here: 20 requests one after another cost one grant and no release (2 scripts each before).
    [Fact]
    public async Task SequentialRequests_OnAWorkerFarFromFull_CostFarFewerScriptsThanRequests()
    {
        const int Requests = 20;
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10), members: 1);
        var worker = Worker(maxConcurrency: 100);
        var before = await ScriptCallsAsync();
        for (var i = 0; i < Requests; i++)
        {
            Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.FromSeconds(10), CancellationToken.None)).Grant);
            worker.Shared!.Release(SlotGrant.Shared);
        }

        var scripts = await ScriptCallsAsync() - before;
        Assert.True(scripts <= Requests / 4, $"{scripts} scripts for {Requests} requests");
        Assert.Equal(worker.Shared!.Held, await PartAsync("one"));
        Assert.Equal(await PartAsync("one"), (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // Leases on two replicas, each round two requests and one ending on each: what the store
    // counts (running, the sum of the parts) and the two leases together never go above
    // max_concurrency, while a replica holds slots it does not use.
    [Fact]
    public async Task TwoReplicasHoldingLeases_NeverHoldMoreThanMaxConcurrencyTogether()
    {
        const int Max = 8;
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10));
        await using var two = Slots(_store.Two, "two", TimeSpan.FromMinutes(10));
        var replicas = new[] { (Slots: one, Worker: Worker(Max)), (Slots: two, Worker: Worker(Max)) };
        var used = new int[2];
        var leasedUnused = false;
        for (var round = 0; round < Max; round++)
        {
            for (var r = 0; r < 2; r++)
            {
                var (slots, worker) = replicas[r];
                for (var i = 0; i < 2; i++)
                {
                    if ((await slots.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant == SlotGrant.Shared)
                    {
                        used[r]++;
                    }
                }

                if (used[r] > 0)
                {
                    worker.Shared!.Release(SlotGrant.Shared);
                    used[r]--;
                }

                leasedUnused |= worker.Shared!.Held > used[r];
                Assert.True(used[0] + used[1] <= Max);
                var leases = (replicas[0].Worker.Shared?.Held ?? 0) + (replicas[1].Worker.Shared?.Held ?? 0);
                Assert.True(leases <= Max, $"leases {leases}");
                var (running, parts) = await RunningAndPartsAsync();
                Assert.Equal(parts, running);
                Assert.True(running <= Max, $"running {running}");
            }
        }

        Assert.True(leasedUnused, "a replica held slots it did not use");
        Assert.True(used[0] + used[1] >= Max - 2, $"{used[0]} + {used[1]} in use: the leases left the others room");
    }

    // one holds a slot it does not use (its lease); two, refused, says so ("want"): one gives the
    // slot back at once, and two's waiting request takes it, with no heartbeat (10 minutes here).
    [Fact]
    public async Task ARefusedReplicasWant_MakesTheHolderGiveBackItsUnusedSlots_AndTheWaiterIsGranted()
    {
        const int Max = 4;
        await using var pair = await TwoReplicasAsync(Max);
        var (one, two, onOne, onTwo) = pair;

        await LeaseTwoUseOneAsync(one, onOne);
        Assert.Equal(SlotGrant.Shared, (await two.AcquireAsync(onTwo, TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(SlotGrant.Shared, (await two.AcquireAsync(onTwo, TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(Max, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));

        var waiting = two.AcquireAsync(onTwo, TimeSpan.FromMinutes(5), CancellationToken.None).AsTask();
        Assert.Equal(SlotGrant.Shared, (await waiting.WaitAsync(TimeSpan.FromSeconds(30))).Grant);
        Assert.Equal(1, onOne.Shared!.Held);
        Assert.Equal(1, await PartAsync("one"));
        Assert.Equal(3, await PartAsync("two"));
        Assert.Equal(Max, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // A want asks each holder for one slot, not its whole unused lease: one, using 1 of its 4
    // leased, gives 1 back and keeps 3 (before: it gave back all 3 unused, and granted them again
    // one script each as its use rose).
    [Fact]
    public async Task AWant_TakesOneSlotFromTheHolder_NotItsWholeUnusedLease()
    {
        const int Max = 6;
        await using var pair = await TwoReplicasAsync(Max);
        var (one, two, onOne, onTwo) = pair;
        await TakeAsync(one, onOne, 4);
        Release(onOne, 3);
        var held = onOne.Shared!.Held;
        Assert.True(held >= 4, $"one holds {held}");
        await TakeAsync(two, onTwo, Max - held);

        var waiting = two.AcquireAsync(onTwo, TimeSpan.FromMinutes(5), CancellationToken.None).AsTask();
        Assert.Equal(SlotGrant.Shared, (await waiting.WaitAsync(TimeSpan.FromSeconds(30))).Grant);
        Assert.Equal(held - 1, onOne.Shared.Held);
        Assert.Equal(held - 1, await PartAsync("one"));
        Assert.Equal(Max, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // A want ends when the replica that was refused is granted: one, whose slots were all in use,
    // gives back the slot of its next release, and once two's waiter has it ("served", -2 on the
    // release channel) one's releases keep their slots again. Before, one gave every release back
    // for a whole heartbeat after a refusal (perf/cluster.sh case 5: ~0.4-1.2 scripts per request).
    [Fact]
    public async Task AServedWant_EndsTheHoldersGiveBacks()
    {
        const int Max = 4;
        await using var pair = await TwoReplicasAsync(Max);
        var (one, two, onOne, onTwo) = pair;
        await TakeAsync(one, onOne, Max);

        var waiting = two.AcquireAsync(onTwo, TimeSpan.FromMinutes(5), CancellationToken.None).AsTask();
        Assert.True(await TestConfig.WaitUntil(() => onOne.Shared!.Lease.IsWanted(one.Now)), "one learns that two wants the worker");
        Release(onOne, 1);
        Assert.Equal(SlotGrant.Shared, (await waiting.WaitAsync(TimeSpan.FromSeconds(30))).Grant);
        Assert.True(await TestConfig.WaitUntil(() => !onOne.Shared!.Lease.IsWanted(one.Now)), "one learns that two was served");

        Release(onOne, 1);
        Assert.Equal(Max - 1, onOne.Shared!.Held);
        Assert.Equal(Max - 1, await PartAsync("one"));
        Assert.False(await _store.One.GetDatabase().HashExistsAsync("aotproxy:worker:w", "want:aotproxy:res:two"), "two's want is gone");
    }

    // A refusal writes the replica's want for one heartbeat (by Redis's clock): the waiter asks
    // again within one and is refused again if it still waits. Before, 3 heartbeats: every replica
    // gave each release back at once for 3 s after a single refusal.
    [Fact]
    public async Task ARefusal_WritesTheReplicasWantForOneHeartbeat()
    {
        var heartbeat = TimeSpan.FromMinutes(10);
        await using var one = Slots(_store.One, "one", heartbeat);
        await using var two = Slots(_store.Two, "two", heartbeat);
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(Worker(maxConcurrency: 1), TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(SlotGrant.None, (await two.AcquireAsync(Worker(maxConcurrency: 1), TimeSpan.Zero, CancellationToken.None)).Grant);

        var db = _store.One.GetDatabase();
        var wantUntil = (long)await db.HashGetAsync("aotproxy:worker:w", "want:aotproxy:res:two");
        Assert.InRange(wantUntil - await RedisNowMsAsync(db), 1, (long)heartbeat.TotalMilliseconds);
    }

    // A worker filled by this replica's own lease waits for nobody: the heartbeat's read of it
    // full (which sets wait_until, so that releases publish) does not make the replica give each
    // release back at once; only a refusal does. Each heartbeat re-sets the wait_until deleted
    // here: seen twice, one heartbeat has run after a read that found the worker full.
    [Fact]
    public async Task AWorkerFullOfItsOwnLease_KeepsTheLease_AcrossTheHeartbeatsReadOfItFull()
    {
        const int Max = 4;
        var worker = Worker(Max);
        await using var one = Slots(_store.One, "one", Heartbeat, members: 1, workers: [worker]);
        for (var i = 0; i < Max; i++)
        {
            Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant);
        }

        Assert.Equal(Max, worker.Shared!.Held);
        var db = _store.One.GetDatabase();
        for (var beat = 0; beat < 2; beat++)
        {
            await db.HashDeleteAsync("aotproxy:worker:w", "wait_until");
            Assert.True(await TestConfig.WaitUntil(() => db.HashExistsAsync("aotproxy:worker:w", "wait_until")), "a heartbeat read the worker full");
        }

        worker.Shared.Release(SlotGrant.Shared);
        Assert.Equal(Max, worker.Shared.Held);
    }

    // Four requests at once on a worker with 4 free slots: the first asks for a block (2), the
    // others wait for its answer and take from it, and ask for more after it. Before, each asked
    // for one slot beside the block, the last found the worker full: a refusal (a "want" to every
    // replica) on a worker that had room for all of them.
    [Fact]
    public async Task RequestsThatComeWhileABlockIsAskedFor_TakeFromIt_AndNoneIsRefused()
    {
        const int Max = 6;
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10), members: 1);
        var worker = Worker(Max);
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant);
        var channel = RedisChannel.Literal("aotproxy:release:w");
        var messages = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await _store.Two.GetSubscriber().SubscribeAsync(channel, (_, message) => messages.Enqueue((string)message!));

        var grants = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => one.AcquireAsync(worker, TimeSpan.FromSeconds(30), CancellationToken.None).AsTask()));

        Assert.All(grants, grant => Assert.Equal(SlotGrant.Shared, grant.Grant));
        await _store.One.GetDatabase().PublishAsync(channel, "end"); // after every message the grants published
        Assert.True(await TestConfig.WaitUntil(() => messages.Contains("end")), "the channel's messages arrived");
        Assert.DoesNotContain("aotproxy:res:one", messages); // a refusal's want

        Assert.Equal(Max, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // A worker whose use swings (least_queue moves a replica's load on one worker between a few
    // and max_concurrency): after the grants that reach the peak, each fall and rise again costs no
    // script until the heartbeat. Before, each fall gave back the spare above max(1, used) at once
    // and the next rise was granted again: about one script per request.
    [Fact]
    public async Task AWorkerWhoseUseSwings_CostsNoScriptAfterItsFirstGrants_UntilTheHeartbeat()
    {
        const int Peak = 8;
        const int Swing = 6;
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10), members: 1);
        var worker = Worker(maxConcurrency: 100);
        await TakeAsync(one, worker, Peak);
        var held = worker.Shared!.Held;

        var before = await ScriptCallsAsync();
        for (var round = 0; round < 4; round++)
        {
            Release(worker, Swing);
            await TakeAsync(one, worker, Swing);
        }

        Assert.Equal(0, await ScriptCallsAsync() - before);
        Assert.Equal(held, worker.Shared.Held);
        Assert.Equal(held, await PartAsync("one"));
    }

    // A release keeps the lease; the heartbeat trims the spare above the peak use since the previous
    // heartbeat (the peak before it: all kept), and gives back all that is unused when no slot was
    // taken since. Each heartbeat here is the heartbeat's step on the worker (10 minutes apart).
    [Fact]
    public async Task TheHeartbeat_TrimsTheSpareAboveThePeakUseSinceThePreviousHeartbeat()
    {
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10), members: 1);
        var worker = Worker(maxConcurrency: 100);
        await TakeAsync(one, worker, 8);
        var held = worker.Shared!.Held;
        Release(worker, 6);
        Assert.Equal(held, worker.Shared.Held);

        worker.Shared.OnHeartbeat(); // the peak since the last heartbeat was 8
        Assert.Equal(held, worker.Shared.Held);

        await TakeAsync(one, worker, 2); // 2 -> 4 -> 2: the peak since is 4
        Release(worker, 2);
        worker.Shared.OnHeartbeat();
        Assert.Equal(4, worker.Shared.Held);
        Assert.True(await TestConfig.WaitUntil(async () => await PartAsync("one") == 4), "the spare above the peak went back");

        worker.Shared.OnHeartbeat(); // no slot taken since: all unused goes back
        Assert.Equal(2, worker.Shared.Held);
        Assert.True(await TestConfig.WaitUntil(async () => await PartAsync("one") == 2), "the unused lease went back");
        Assert.Equal(2, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // A lease not used for a heartbeat goes back to the store; what is in use stays.
    [Fact]
    public async Task LeasedUnusedSlots_GoBackAfterAHeartbeatWithoutGrants()
    {
        await using var one = Slots(_store.One, "one", Heartbeat);
        var worker = Worker(maxConcurrency: 8);
        await LeaseTwoUseOneAsync(one, worker);

        Assert.True(await TestConfig.WaitUntil(async () => await PartAsync("one") == 1), "the unused slot went back");
        Assert.Equal(1, worker.Shared!.Held);
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
    }

    // A dead replica's lease (used or not) is its part: the reaper subtracts all of it, once.
    [Fact]
    public async Task TheReaper_FreesADeadReplicasLeasedSlots()
    {
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10));
        var worker = Worker(maxConcurrency: 8);
        await LeaseTwoUseOneAsync(one, worker);
        var db = _store.Two.GetDatabase();

        Assert.Equal(1, await ReplicaReaper.ReapAsync(db, "one"));
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:worker:w", "running"));
        Assert.Equal(0, await ReplicaReaper.ReapAsync(db, "one"));
        Assert.Equal(0, (long)await db.HashGetAsync("aotproxy:worker:w", "running"));
    }

    // Restarted empty, the store learns this replica's part from its books: what is in use, the
    // lease dropped.
    [Fact]
    public async Task AfterAnEmptyRestart_TheReplicasPartIsWhatItUses()
    {
        await using var plane = ClusterPlane.Start(Snapshot("http://127.0.0.1:1/", 8), () => _store.One, "one", members: 2, sharedSlots: true);
        await LeaseTwoUseOneAsync(plane.Slots!, plane.Worker);

        await _store.Server.StopAsync();
        Assert.True(await TestConfig.WaitUntil(() => !_store.One.IsConnected), "the client sees the store gone");
        await _store.Server.RestartAsync();
        Assert.True(await TestConfig.WaitUntil(() => _store.One.IsConnected, TimeSpan.FromSeconds(30)), "the client reconnects");

        // As the heartbeat does: a run that found another under way, or a store not answering yet
        // right after the reconnect, does nothing, and the next one tries again.
        Assert.True(await TestConfig.WaitUntil(async () =>
        {
            await plane.Resync.RunAsync(_store.One.GetDatabase());
            try
            {
                return await PartAsync("one") == 1;
            }
            catch (RedisException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30)), "a resync gives the replica its part back");
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
        Assert.Equal(1, plane.Worker.Shared!.Held);
    }

    // Preemption across replicas (issue 20): a refused request that may preempt writes its want with
    // its priority; while it is live, a freed slot goes to it and to nobody less important, of any
    // replica (here, one's own next request), and the grant that serves it deletes it.
    [Fact]
    public async Task AFreedSlot_GoesToAMoreImportantWant_NeverToALessImportantRequest()
    {
        await using var pair = await TwoReplicasAsync(maxConcurrency: 1);
        var (one, two, onOne, onTwo) = pair;
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(onOne, TimeSpan.Zero, new FleetWant(2, MayPreempt: false), default, CancellationToken.None)).Grant);
        var wants = ClusterKeys.PriorityWants("w");
        var db = _store.One.GetDatabase();

        Assert.Equal(SharedTakeOutcome.Refused, await two.TryGrantAsync(two.For(onTwo), 1, priority: 0, member: "two|1"));
        var score = (double)(await db.SortedSetScoreAsync(wants, "two|1"))!;
        Assert.Equal(0, Math.Floor(score / WantSpan)); // its priority, with its time in the low bits
        onOne.Shared!.ReleaseToFleet(); // the slot goes back to the store, not to one's lease
        Assert.True(await RunningIsZeroAsync(), "one's slot is back in the store");
        Assert.Equal(0, onOne.Shared.Held);

        Assert.Equal(SharedTakeOutcome.Refused, await one.TryGrantAsync(onOne.Shared, 1, priority: 2)); // a free slot, kept for the want
        Assert.Equal(SharedTakeOutcome.Refused, await one.TryGrantAsync(onOne.Shared, 1, priority: 1));
        Assert.Equal(SharedTakeOutcome.Taken, await two.TryGrantAsync(onTwo.Shared!, 1, priority: 0, member: "two|1"));
        Assert.Null(await db.SortedSetScoreAsync(wants, "two|1")); // served: gone
        Assert.Equal(1, (long)await db.HashGetAsync("aotproxy:worker:w", "running"));
    }

    // A want of a priority does not hold back a request of the same priority (the slot would only
    // change hands within it), and a want past its time holds back nobody.
    [Fact]
    public async Task AWant_HoldsBackOnlyLessImportantRequests_AndOnlyWhileItIsLive()
    {
        var heartbeat = TimeSpan.FromSeconds(3); // a want lasts one
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10));
        await using var two = Slots(_store.Two, "two", heartbeat);
        var onOne = Worker(maxConcurrency: 2);
        var onTwo = Worker(maxConcurrency: 2);
        var db = _store.One.GetDatabase();
        var wants = ClusterKeys.PriorityWants("w");
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(onOne, TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(onOne, TimeSpan.Zero, CancellationToken.None)).Grant);
        var before = await RedisNowMsAsync(db);
        Assert.Equal(SharedTakeOutcome.Refused, await two.TryGrantAsync(two.For(onTwo), 2, priority: 1, member: "two|1"));
        var after = await RedisNowMsAsync(db);
        onOne.Shared!.ReleaseToFleet();
        Assert.True(await TestConfig.WaitUntil(async () => (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running") == 1), "one slot is free");

        Assert.Equal(SharedTakeOutcome.Refused, await one.TryGrantAsync(onOne.Shared, 2, priority: 2));
        Assert.Equal(SharedTakeOutcome.Taken, await one.TryGrantAsync(onOne.Shared, 2, priority: 1)); // its own priority: not held back
        onOne.Shared.ReleaseToFleet();
        Assert.True(await TestConfig.WaitUntil(async () => (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running") == 1), "one slot is free again");

        Assert.Equal(SharedTakeOutcome.Refused, await one.TryGrantAsync(onOne.Shared, 2, priority: 2)); // the want lives still

        // Its time is one heartbeat from its refusal, on Redis's clock (the low bits of its score).
        // Moved to the last millisecond before the store's now, as that heartbeat's passing would
        // leave it, it holds back nobody, with no wait for the clock.
        var until = (long)(double)(await db.SortedSetScoreAsync(wants, "two|1"))! % WantSpan;
        Assert.InRange(until, before + (long)heartbeat.TotalMilliseconds, after + (long)heartbeat.TotalMilliseconds);
        var past = (1 * WantSpan) + await RedisNowMsAsync(db) - 1;
        await db.SortedSetAddAsync(wants, "two|1", past, SortedSetWhen.Exists);
        Assert.Equal(past, await db.SortedSetScoreAsync(wants, "two|1"));
        Assert.Equal(SharedTakeOutcome.Taken, await one.TryGrantAsync(onOne.Shared, 2, priority: 2));
        Assert.Null(await db.SortedSetScoreAsync(wants, "two|1")); // past its time: deleted
    }

    // One preemption per waiting request: the first holder to claim its want may preempt for it, a
    // second may not; a victim of the same or a more important class may not be preempted for it;
    // the slot then freed is the claimed want's.
    [Fact]
    public async Task AWant_IsClaimedOnce_AndOnlyForALessImportantVictim()
    {
        await using var pair = await TwoReplicasAsync(maxConcurrency: 1);
        var (one, two, onOne, onTwo) = pair;
        Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(onOne, TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(SharedTakeOutcome.Refused, await two.TryGrantAsync(two.For(onTwo), 1, priority: 1, member: "two|7"));
        var db = _store.One.GetDatabase();

        Assert.False(await SharedWorkerSlots.TryClaimAsync(db, "w", "two|7", "one", victimPriority: 1, livesMs: 1000)); // not less important
        Assert.False(await SharedWorkerSlots.TryClaimAsync(db, "w", "two|8", "one", victimPriority: 2, livesMs: 1000)); // no such want
        Assert.True(await SharedWorkerSlots.TryClaimAsync(db, "w", "two|7", "one", victimPriority: 2, livesMs: 1000));
        Assert.False(await SharedWorkerSlots.TryClaimAsync(db, "w", "two|7", "three", victimPriority: 4, livesMs: 1000)); // claimed already
        Assert.Equal("one", (string?)await db.StringGetAsync(ClusterKeys.Claim("two|7")));

        // The victim's slot comes back: a claimed want holds it against a request of its own
        // priority too (whose want, unclaimed, would not), and gets it.
        onOne.Shared!.ReleaseToFleet();
        Assert.True(await RunningIsZeroAsync(), "the victim's slot is back in the store");
        Assert.Equal(SharedTakeOutcome.Refused, await one.TryGrantAsync(onOne.Shared, 1, priority: 1, member: "z|1"));
        Assert.Equal(SharedTakeOutcome.Taken, await two.TryGrantAsync(onTwo.Shared!, 1, priority: 1, member: "two|7"));
    }

    // A want that may preempt names the pool: a victim on a worker other than the one its request
    // asked may be claimed for it (once), the slot it frees is held for it against a less important
    // request of another replica, and the request takes it there (MovedTo). With the want on the
    // worker asked only, the holder has nothing to claim and its own request takes the slot.
    [Fact]
    public async Task AWantOnThePool_IsClaimedOnce_AndServedByASlotFreedOnAnotherWorker_NeverByALessImportantRequest()
    {
        await using var one = Slots(_store.One, "one", TimeSpan.FromMinutes(10));
        await using var two = Slots(_store.Two, "two", TimeSpan.FromMinutes(10));
        Assert.True(await ReleaseListenersAsync(2), "both replicas listen for releases");
        WorkerState[] onOne = [Worker(1, "wa"), Worker(1, "wb")];
        WorkerState[] onTwo = [Worker(1, "wa"), Worker(1, "wb")];
        foreach (var worker in onOne)
        {
            Assert.Equal(SlotGrant.Shared, (await one.AcquireAsync(worker, TimeSpan.Zero, new FleetWant(2, MayPreempt: false), default, CancellationToken.None)).Grant);
        }

        // two's request asks wa, is refused, and waits with its want on wa and wb.
        var waiting = two.AcquireAsync(onTwo[0], TimeSpan.FromSeconds(30), new FleetWant(0, MayPreempt: true, onTwo), default, CancellationToken.None).AsTask();
        var db = _store.One.GetDatabase();
        Assert.True(await TestConfig.WaitUntil(async () => await db.SortedSetLengthAsync(ClusterKeys.PriorityWants("wb")) == 1), "the want is written on wb too");
        var member = (string)(await db.SortedSetRangeByRankAsync(ClusterKeys.PriorityWants("wa")))[0]!;
        Assert.Equal(member, (string?)(await db.SortedSetRangeByRankAsync(ClusterKeys.PriorityWants("wb")))[0]);

        Assert.True(await SharedWorkerSlots.TryClaimAsync(db, "wb", member, "one", victimPriority: 2, livesMs: 10_000)); // a victim on wb
        Assert.False(await SharedWorkerSlots.TryClaimAsync(db, "wa", member, "three", victimPriority: 2, livesMs: 10_000)); // once
        onOne[1].Shared!.ReleaseToFleet(); // the victim's slot on wb goes back to the store

        // Held for the want (or taken by it already): one's less important request is refused it.
        Assert.Equal(SharedTakeOutcome.Refused, await one.TryGrantAsync(onOne[1].Shared!, 1, priority: 2));
        var acquired = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(SlotGrant.Shared, acquired.Grant);
        Assert.Same(onTwo[1], acquired.MovedTo);
        Assert.Equal(1, await db.HashGetAsync("aotproxy:res:two", "w|wb|running"));
        Assert.True((await db.HashGetAsync("aotproxy:res:two", "w|wa|running")).IsNull, "nothing taken on wa");
        Assert.Equal(0, await db.SortedSetLengthAsync(ClusterKeys.PriorityWants("wa"))); // served: gone everywhere
        Assert.Equal(0, await db.SortedSetLengthAsync(ClusterKeys.PriorityWants("wb")));
    }

    // Issue 20: one's request, admitted by one's admission (its model's fair share attached, the
    // other replicas' queues set as a flush's answer sets them, FleetQueuesTests), holds the
    // worker's only slot fleet-wide. At its release (AdmissionController.ReleaseSlot), while two has
    // requests queued for the model, the slot goes back to the store and two may take it; while
    // nobody else waits, one's lease keeps it for one's next request and the store still counts it.
    [Theory]
    [InlineData("1000|2:3", true)]
    [InlineData("1000|", false)]
    public async Task AReleasedSlot_GoesBackToTheStore_WhileAnotherReplicaHasRequestsQueued_ElseTheLeaseKeepsIt(string othersFlush, bool othersWait)
    {
        await using var pair = await TwoReplicasAsync(maxConcurrency: 1);
        var (one, two, onOne, onTwo) = pair;
        var snapshot = Snapshot("http://127.0.0.1:1/", 1);
        var workers = new WorkerSet([onOne]);
        var time = TimeProvider.System;
        var admissions = new AdmissionController(new WaiterPool(time, capacity: 16), new GatewayTelemetry().Admission, time, new Router(time, Random.Shared, NullLogger.Instance));
        admissions.Apply(workers, snapshot);
        var cls = snapshot.Classes[0];
        var admitted = await admissions.AdmitAsync(workers.Pools[Model], snapshot.Tenants[0], cls, cls.Priority, 100, 0, CancellationToken.None);
        Assert.Equal(AdmissionDecision.Admitted, admitted.Decision);
        var model = Assert.Single(admissions.Models);
        var fleet = new SharedVtc(model, time, TimeSpan.FromMinutes(10)); // fresh for the whole test
        model.Fleet = fleet;
        fleet.Answered([], [], [], FleetQueues.Parse([othersFlush]));
        Assert.Equal(othersWait, fleet.Others.Waiting > 0);

        var slot = admitted.Slot;
        var grant = await one.AcquireAsync(onOne, TimeSpan.Zero, CancellationToken.None);
        Assert.Equal(SlotGrant.Shared, grant.Grant);
        slot.Granted(grant.Grant);
        Assert.Equal(1, onOne.Shared!.Held);
        Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));

        admissions.ReleaseSlot(ref slot);
        admitted.Lease.Release(null);

        Assert.False(slot.IsHeld);
        Assert.Equal(0, onOne.SlotsTaken);
        if (othersWait)
        {
            Assert.Equal(0, onOne.Shared.Held);
            Assert.True(await RunningIsZeroAsync(), "the slot is back in the store");
            Assert.Equal(0, await PartAsync("one"));
            Assert.Equal(SharedTakeOutcome.Taken, await two.TryGrantAsync(two.For(onTwo), 1));
        }
        else
        {
            Assert.Equal(1, onOne.Shared.Held);
            await _store.One.GetDatabase().PingAsync(); // after any release one sent
            Assert.Equal(1, (long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running"));
            Assert.Equal(1, await PartAsync("one"));
            Assert.Equal(SharedTakeOutcome.Refused, await two.TryGrantAsync(two.For(onTwo), 1));
        }
    }

    // one and two on one worker (each with its own state of it), both listening for releases; no
    // heartbeat runs in the test (10 minutes).
    private async Task<ReplicaPair> TwoReplicasAsync(int maxConcurrency)
    {
        var heartbeat = TimeSpan.FromMinutes(10);
        var pair = new ReplicaPair(Slots(_store.One, "one", heartbeat), Slots(_store.Two, "two", heartbeat), Worker(maxConcurrency), Worker(maxConcurrency));
        Assert.True(await ReleaseListenersAsync(2), "both replicas listen for releases");
        return pair;
    }

    private sealed record ReplicaPair(SharedWorkerSlots One, SharedWorkerSlots Two, WorkerState OnOne, WorkerState OnTwo) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await One.DisposeAsync();
            await Two.DisposeAsync();
        }
    }

    // Two requests at once, one of them ends: the replica keeps the second slot leased (a release
    // gives nothing back while the worker is not wanted).
    private async Task LeaseTwoUseOneAsync(SharedWorkerSlots slots, WorkerState worker, string replica = "one")
    {
        Assert.Equal(SlotGrant.Shared, (await slots.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant);
        Assert.Equal(SlotGrant.Shared, (await slots.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant);
        worker.Shared!.Release(SlotGrant.Shared);
        Assert.Equal(2, worker.Shared.Held);
        Assert.Equal(2, await PartAsync(replica));
    }

    private static async Task TakeAsync(SharedWorkerSlots slots, WorkerState worker, int requests)
    {
        for (var i = 0; i < requests; i++)
        {
            Assert.Equal(SlotGrant.Shared, (await slots.AcquireAsync(worker, TimeSpan.Zero, CancellationToken.None)).Grant);
        }
    }

    private static void Release(WorkerState worker, int requests)
    {
        for (var i = 0; i < requests; i++)
        {
            worker.Shared!.Release(SlotGrant.Shared);
        }
    }

    // PUBLISH answers how many clients received it (a worker nobody has is ignored). Bounded, 10 s.
    private async Task<bool> ReleaseListenersAsync(long expected)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await _store.One.GetDatabase().PublishAsync(RedisChannel.Literal("aotproxy:release:nobody"), "probe") == expected)
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    // INFO commandstats (an admin command: a connection of its own): the scripts the store ran
    // (EVAL, EVALSHA) so far. A PING on the replica's connection first: every fire-and-forget
    // script it sent before has run.
    private async Task<long> ScriptCallsAsync()
    {
        await _store.One.GetDatabase().PingAsync();
        await using var admin = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{_store.Server.Port},allowAdmin=true");
        var info = (string)(await admin.GetDatabase().ExecuteAsync("INFO", "commandstats"))!;
        return info.Split('\n')
            .Where(line => line.StartsWith("cmdstat_eval:", StringComparison.Ordinal) || line.StartsWith("cmdstat_evalsha:", StringComparison.Ordinal))
            .Sum(line => long.Parse(line.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture));
    }

    // The worker's running count and the sum of the replicas' parts, read at one instant (one
    // script): a give-back in flight lands before or after both.
    private async Task<(long Running, long Parts)> RunningAndPartsAsync()
    {
        var read = (long[])(await _store.One.GetDatabase().ScriptEvaluateAsync(
            """
            return {tonumber(redis.call('HGET', KEYS[1], 'running') or '0'),
              tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') + tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')}
            """,
            ["aotproxy:worker:w", "aotproxy:res:one", "aotproxy:res:two"],
            ["w|w|running"]))!;
        return (read[0], read[1]);
    }

    // This replica's part of the worker's running count (aotproxy:res:{replica}).
    private async Task<long> PartAsync(string replica) =>
        (long)await _store.One.GetDatabase().HashGetAsync($"aotproxy:res:{replica}", "w|w|running");

    // A want's score: priority x 2^42 + until (ms, Redis's clock).
    private const long WantSpan = 4398046511104;

    // Redis's clock in ms, as the scripts read it.
    private static async Task<long> RedisNowMsAsync(IDatabase db)
    {
        var time = (RedisValue[])(await db.ExecuteAsync("TIME"))!;
        return ((long)time[0] * 1000) + ((long)time[1] / 1000);
    }

    private static SharedWorkerSlots Slots(ConnectionMultiplexer redis, string replica, TimeSpan heartbeat, int members = 2, WorkerState[]? workers = null)
    {
        var slots = new SharedWorkerSlots(() => redis, () => replica, () => members, () => workers ?? [], () => new CircuitBreakerModel(5, 2, TimeSpan.FromSeconds(30), 1, TimeSpan.FromSeconds(60)), heartbeat, TimeProvider.System);
        slots.Start();
        return slots;
    }

    private static WorkerState Worker(int maxConcurrency, string name = "w") =>
        new(new WorkerModel(name, new Uri("http://127.0.0.1:1/"), [Model], maxConcurrency, 1, ""), TimeProvider.System);

    // The releases are fire-and-forget: bounded, 10 s.
    private async Task<bool> RunningIsZeroAsync()
    {
        for (var i = 0; i < 100; i++)
        {
            if ((long)await _store.One.GetDatabase().HashGetAsync("aotproxy:worker:w", "running") == 0)
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    private static GatewaySnapshot Snapshot(string workerUrl, int maxConcurrency, string maxQueueWait = "30s")
    {
        var loaded = ConfigLoader.Parse(
            $"""
            [[classes]]
            name = "default"
            max_queue_wait = "{maxQueueWait}"

            [[workers]]
            name = "w"
            url = "{workerUrl}"
            models = ["{Model}"]
            max_concurrency = {maxConcurrency}

            [[tenants]]
            name = "acme"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(Key)}"]
            """,
            "test.toml",
            1,
            TimeProvider.System);
        Assert.True(loaded.IsValid, loaded.ToString());
        return loaded.Snapshot;
    }


    // A worker that holds each request until the test lets it finish, counting how many it held at once.
    private sealed class GatedWorker : IAsyncDisposable
    {
        private readonly SemaphoreSlim _gate = new(0);
        private int _atOnce;
        private long _most;

        public GatedWorker()
        {
            var json = Fixtures.Text("openai/chat_nonstream.json");
            Server = LoopbackTcpServer.KeepAlive(async (_, stream, ct) =>
            {
                var now = Interlocked.Increment(ref _atOnce);
                Atomic.Max(ref _most, now);
                try
                {
                    await _gate.WaitAsync(ct);
                }
                finally
                {
                    Interlocked.Decrement(ref _atOnce);
                }

                await LoopbackTcpServer.WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}", ct);
                return true;
            });
        }

        public LoopbackTcpServer Server { get; }

        public string Url => Server.Url("/").ToString();

        public int MostAtOnce => (int)Volatile.Read(ref _most);

        public void Finish(int requests) => _gate.Release(requests);

        public async ValueTask DisposeAsync()
        {
            _gate.Release(1000);
            await Server.DisposeAsync();
        }
    }
}
