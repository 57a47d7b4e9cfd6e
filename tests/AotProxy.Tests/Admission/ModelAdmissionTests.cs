using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Routing;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Admission;

public sealed class ModelAdmissionTests
{
    [Fact]
    public async Task Admit_FreeSlotNobodyWaiting_GoesStraightOn_ThenQueuesUntilARelease()
    {
        var test = new AdmissionHarness(capacity: 2);
        var cls = Class();
        var tenant = Tenant("a");

        var first = test.Admit(tenant, cls);
        var second = test.Admit(tenant, cls);
        var third = test.Admit(tenant, cls);

        Assert.True(first.IsCompletedSuccessfully);
        Assert.Equal(AdmissionDecision.Admitted, (await first).Decision);
        Assert.Equal(AdmissionDecision.Admitted, (await second).Decision);
        Assert.False(third.IsCompleted);
        Assert.Equal(1, test.Model.Waiting);

        (await first).Lease.Release(null);
        var granted = await Settle(third);

        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        Assert.Equal((2, 0), (test.Model.Slots.Used, test.Model.Waiting));
    }

    [Fact]
    public async Task Admit_QueueFull_IsRefusedWithRetryAfter()
    {
        var test = new AdmissionHarness(capacity: 1, queueCapacity: 2);
        var cls = Class();
        var tenant = Tenant("a");
        var held = (await test.Admit(tenant, cls));
        var queued = new[] { test.Admit(tenant, cls), test.Admit(tenant, cls) };

        var refused = test.Admit(tenant, cls);

        Assert.True(refused.IsCompletedSuccessfully);
        Assert.Equal(AdmissionDecision.QueueFull, (await refused).Decision);
        Assert.InRange((await refused).RetryAfterSeconds, 1, 300);
        held.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(queued[0])).Decision);
    }

    [Fact]
    public async Task Admit_WaitsPastMaxQueueWait_TimesOut_AndTheSlotNeverGoesToTheDeadRequest()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class(maxQueueWait: TimeSpan.FromSeconds(5));
        var tenant = Tenant("a");
        var held = (await test.Admit(tenant, cls));
        var late = test.Admit(tenant, cls);

        test.Time.Advance(TimeSpan.FromSeconds(5));
        var result = await Settle(late);

        Assert.Equal(AdmissionDecision.TimedOut, result.Decision);
        Assert.Equal(TimeSpan.FromSeconds(5), result.Waited);
        Assert.Equal(0, test.Model.Waiting); // the tombstone came off the queue
        held.Lease.Release(null);
        Assert.Equal(0, test.Model.Slots.Used);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(tenant, cls)).Decision);
    }

    [Fact]
    public async Task Admit_ClientGoneWhileWaiting_IsCancelled_AndLeavesNothingBehind()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class();
        var tenant = Tenant("a");
        var held = (await test.Admit(tenant, cls));
        using var client = new CancellationTokenSource();
        var waiting = test.Admit(tenant, cls, cancellationToken: client.Token);

        await client.CancelAsync();
        var result = await Settle(waiting);
        held.Lease.Release(null);

        Assert.Equal(AdmissionDecision.Cancelled, result.Decision);
        Assert.Equal((0, 0, 0), (test.Model.Slots.Used, test.Model.Waiting, test.Model.Tenants.Single().InFlight));
    }

    [Fact]
    public async Task Admit_RefusedFromTheQueue_SaysItsPlaceInTheGrantOrder_AndTheGrantRate()
    {
        // Fair share takes turns: a's third waiter has two of a's ahead of it, and b's one turn
        // comes first too; b's waiter is behind a's head only.
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class();
        var (a, b) = (Tenant("a"), Tenant("b"));
        var held = await test.Admit(a, cls);
        using var leaveA = new CancellationTokenSource();
        using var leaveB = new CancellationTokenSource();
        var queuedA = new[] { test.Admit(a, cls), test.Admit(a, cls), test.Admit(a, cls, cancellationToken: leaveA.Token) };
        var queuedB = test.Admit(b, cls, cancellationToken: leaveB.Token);

        await leaveA.CancelAsync();
        var thirdOfA = await Settle(queuedA[2]);
        await leaveB.CancelAsync();
        var firstOfB = await Settle(queuedB);

        Assert.Equal((AdmissionDecision.Cancelled, 4), (thirdOfA.Decision, thirdOfA.QueuePosition));
        Assert.Equal((AdmissionDecision.Cancelled, 2), (firstOfB.Decision, firstOfB.QueuePosition));
        Assert.Equal(0.1, thirdOfA.GrantRate, 6); // one grant over the last 10 s
        held.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(queuedA[0])).Decision);
    }

    [Fact]
    public async Task Admit_QueueFull_WasNeverQueued_PositionZero_WithTheGrantRate()
    {
        var test = new AdmissionHarness(capacity: 2, queueCapacity: 2);
        var cls = Class();
        var tenant = Tenant("a");
        var held = new[] { await test.Admit(tenant, cls), await test.Admit(tenant, cls) };
        var queued = new[] { test.Admit(tenant, cls), test.Admit(tenant, cls) };

        var refused = await test.Admit(tenant, cls);

        Assert.Equal((AdmissionDecision.QueueFull, 0), (refused.Decision, refused.QueuePosition));
        Assert.Equal(0.2, refused.GrantRate, 6);
        held[0].Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(queued[0])).Decision);
    }

    [Fact]
    public async Task Admit_NoRoutableWorker_IsRefusedAtOnce()
    {
        var test = new AdmissionHarness(capacity: 0);

        var result = test.Admit(Tenant("a"), Class());

        Assert.True(result.IsCompletedSuccessfully);
        Assert.Equal(AdmissionDecision.NoCapacity, (await result).Decision);
    }

    [Fact]
    public async Task Admit_ClassAtItsMaxUtilization_IsRefusedBeforeQueueing_OthersStillAdmitted()
    {
        var test = new AdmissionHarness(capacity: 4);
        var free = Class("free", maxUtilization: 0.5);
        var paid = Class("paid");
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("f"), free)).Decision);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("f"), free)).Decision);

        var guarded = test.Admit(Tenant("f"), free);

        Assert.Equal(AdmissionDecision.CapacityGuard, (await guarded).Decision);
        Assert.Equal(0, test.Model.Waiting);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("p"), paid)).Decision);
    }

    // holdback 0.5 over bands 0, 1, 2 on 4 slots: P0 up to 100%, P1 below 75%, P2 below 50%.
    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 2)]
    [InlineData(7, 2)] // less important than every band: held back like the least important
    public async Task Admit_GraduatedHoldback_LessImportantBandsStopAtLowerUtilization(int priority, int admitted)
    {
        var test = new AdmissionHarness(capacity: 4, holdback: 0.5, bands: [0, 1, 2]);
        var cls = Class("c", priority: priority);
        for (var i = 0; i < admitted; i++)
        {
            Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("t"), cls)).Decision);
        }

        var refused = await test.Admit(Tenant("t"), cls);

        Assert.Equal(AdmissionDecision.CapacityGuard, refused.Decision);
        Assert.Equal((admitted, 0), (test.Model.Slots.Used, test.Model.Waiting));
    }

    [Fact]
    public async Task Admit_GraduatedHoldback_MostImportantBandTakesEverySlot()
    {
        var test = new AdmissionHarness(capacity: 4, holdback: 0.5, bands: [0, 1, 2]);
        var low = Class("low", priority: 2);
        var top = Class("top", priority: 0);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("l"), low)).Decision);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("l"), low)).Decision);
        Assert.Equal(AdmissionDecision.CapacityGuard, (await test.Admit(Tenant("l"), low)).Decision);

        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("t"), top)).Decision);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("t"), top)).Decision);
        Assert.Equal(4, test.Model.Slots.Used);
    }

    [Fact]
    public async Task Admit_GraduatedHoldback_ClassMaxUtilizationStillAppliesWhenLower()
    {
        var test = new AdmissionHarness(capacity: 4, holdback: 0.2, bands: [0, 1]);
        var cls = Class("c", priority: 0, maxUtilization: 0.5);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("t"), cls)).Decision);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("t"), cls)).Decision);

        Assert.Equal(AdmissionDecision.CapacityGuard, (await test.Admit(Tenant("t"), cls)).Decision);
    }

    // Protection sheds before the utilization guard and the queue: a shed request takes no slot,
    // no place and no charge, and the protected class goes on.
    [Fact]
    public async Task Admit_ShedClass_RefusedBeforeTheGuard_TakesNothing_AndTheProtectedClassIsAdmitted()
    {
        var strict = Class("strict", priority: 0) with { MaxErrorRate = 0.01 };
        var loose = Class("loose", priority: 1, maxUtilization: 0.5) with { MaxErrorRate = 0.2 };
        var test = new AdmissionHarness(capacity: 2, protection: new ProtectionModel(TimeSpan.FromSeconds(10), 5, []).For([strict, loose]));
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("l", loose), loose)).Decision); // utilization 50%: the guard's limit
        for (var i = 0; i < 10; i++)
        {
            test.Model.Protection.Record(strict.Name, AttemptOutcome.UpstreamFailed, null);
        }

        test.Time.Advance(TimeSpan.FromSeconds(1));
        var shed = await test.Admit(Tenant("l", loose), loose);

        Assert.Equal(AdmissionDecision.Shed, shed.Decision);
        Assert.Equal(("strict", ShedReason.ErrorRateKey, 1.0), (shed.Shed!.ProtectedClass, shed.Shed.Key, shed.Shed.Measured));
        Assert.Equal(11, shed.RetryAfterSeconds); // a whole calm window from the next judgement on, 1 s away
        Assert.Equal((1, 0), (test.Model.Slots.Used, test.Model.Waiting));
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("s", strict), strict)).Decision);
    }

    // A class shed while its requests wait: they get the shed 503 at once (not a grant on the degraded
    // fleet, nor a wait to max_queue_wait), counted once, holding no slot; the protected class's
    // waiter stays queued and gets the slot.
    [Fact]
    public async Task Queued_RequestsOfAClassThatBecomesShed_AreRefusedShedAtOnce_TheProtectedOnesStay()
    {
        var strict = Class("strict", priority: 0) with { MaxErrorRate = 0.01 };
        var loose = Class("loose", priority: 1) with { MaxErrorRate = 0.2 };
        var test = new AdmissionHarness(SchedulerPolicyNames.Priority, capacity: 1, protection: new ProtectionModel(TimeSpan.FromSeconds(10), 5, []).For([strict, loose]));
        var holder = await test.Admit(Tenant("s", strict), strict);
        Assert.Equal(AdmissionDecision.Admitted, holder.Decision);
        var shedLater = new[] { test.Admit(Tenant("l", loose), loose), test.Admit(Tenant("l2", loose), loose) };
        var protectedWaiter = test.Admit(Tenant("s", strict), strict);
        Assert.Equal(3, test.Model.Waiting);

        for (var i = 0; i < 10; i++)
        {
            test.Model.Protection.Record(strict.Name, AttemptOutcome.UpstreamFailed, null);
        }

        test.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, test.Model.Protection.State.Shed); // the judgement that sheds loose

        foreach (var pending in shedLater)
        {
            var shed = await AdmissionHarness.Settle(pending);
            Assert.Equal(AdmissionDecision.Shed, shed.Decision);
            Assert.Equal(("strict", ShedReason.ErrorRateKey), (shed.Shed!.ProtectedClass, shed.Shed.Key));
            Assert.Equal(11, shed.RetryAfterSeconds);
        }

        Assert.False(protectedWaiter.IsCompleted);
        Assert.Equal((1, 1), (test.Model.Slots.Used, test.Model.Waiting));
        holder.Lease.Release(null);
        var granted = await AdmissionHarness.Settle(protectedWaiter);
        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        granted.Lease.Release(null);
        Assert.Equal((0, 0), (test.Model.Slots.Used, test.Model.Waiting));
    }

    [Theory]
    [InlineData(3, 1, 0.75)]
    [InlineData(1, 1, 0.5)]
    [InlineData(9, 1, 0.9)]
    public async Task FairShare_TwoBackloggedTenants_SplitByWeight(int weightA, int weightB, double shareA)
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class();
        var a = Tenant("a", weight: weightA);
        var b = Tenant("b", weight: weightB);

        var grants = await Serve(test, 400, (a, cls), (b, cls));

        Assert.InRange(grants["a"] / 400.0, shareA - 0.02, shareA + 0.02);
    }

    [Fact]
    public async Task FairShare_ClassWeightsFirst_ThenTenantsWithinTheClass()
    {
        var test = new AdmissionHarness(capacity: 1);
        var enterprise = Class("enterprise", weight: 70);
        var free = Class("free", weight: 30);
        var a = Tenant("a", enterprise);
        var b = Tenant("b", enterprise);
        var c = Tenant("c", free);

        var grants = await Serve(test, 500, (a, enterprise), (b, enterprise), (c, free));

        Assert.InRange(grants["c"] / 500.0, 0.28, 0.32);
        Assert.InRange(grants["a"] / 500.0, 0.33, 0.37);
        Assert.InRange(grants["b"] / 500.0, 0.33, 0.37);
    }

    [Fact]
    public async Task FairShare_TenantBackFromIdle_BanksNoCredit()
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class();
        var a = Tenant("a");
        var b = Tenant("b");
        await Serve(test, 100, (a, cls)); // a alone: its counter grows, b's stays 0

        var grants = await Serve(test, 100, (a, cls), (b, cls));

        // Without the lift b would take the next 100 grants to catch up.
        Assert.InRange(grants["b"], 45, 55);
    }

    [Fact]
    public async Task Priority_LowerLevelFirst_WhateverTheArrivalOrder()
    {
        var test = new AdmissionHarness(SchedulerPolicyNames.Priority, capacity: 1);
        var low = Class("p4", priority: 4);
        var high = Class("p0", priority: 0);
        var held = (await test.Admit(Tenant("x"), high));
        var early = test.Admit(Tenant("l"), low);
        var late = test.Admit(Tenant("h"), high);

        held.Lease.Release(null);
        var granted = await Settle(late);

        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        Assert.False(early.IsCompleted);
        granted.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(early)).Decision);
    }

    [Fact]
    public async Task Priority_Aging_LiftsAWaiterOneLevelPerInterval()
    {
        var test = new AdmissionHarness(SchedulerPolicyNames.Priority, capacity: 1);
        var low = Class("p4", priority: 4);
        var high = Class("p1", priority: 1);
        for (var i = 0; i < 3; i++)
        {
            var quick = (await test.Admit(Tenant("x"), high)); // median request time: 1 s, so the interval is 2 s
            test.Time.Advance(TimeSpan.FromSeconds(1));
            quick.Lease.Release(null);
        }

        var held = (await test.Admit(Tenant("x"), high));
        var old = test.Admit(Tenant("l"), low);

        test.Time.Advance(TimeSpan.FromSeconds(8)); // 4 intervals: p4 competes as p0
        var fresh = test.Admit(Tenant("h"), high);
        held.Lease.Release(null);

        Assert.Equal(AdmissionDecision.Granted, (await Settle(old)).Decision);
        Assert.False(fresh.IsCompleted);
        Assert.Equal(0, PriorityPolicyEffective(4, waitedSeconds: 8, agingSeconds: 2));
        Assert.Equal(3, PriorityPolicyEffective(4, waitedSeconds: 3, agingSeconds: 2));
    }

    [Fact]
    public async Task Bucket_StrictClass_StaysInItsShare_AtLeastBorrowsIdleLowerBuckets()
    {
        // 4 slots: bucket 0 is guaranteed 2, bucket 1 is guaranteed 2.
        var test = new AdmissionHarness(SchedulerPolicyNames.Bucket, capacity: 4, shares: [0.5, 0.5]);
        var strict = Class("strict", firstBucket: 0, lastBucket: 0, strict: true);
        var atLeast = Class("atleast", firstBucket: 0, lastBucket: 0);
        var low = Class("low", priority: 4, firstBucket: 1, lastBucket: 1);

        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("s"), strict)).Decision);
        Assert.Equal(AdmissionDecision.Admitted, (await test.Admit(Tenant("s"), strict)).Decision);
        var strictThird = test.Admit(Tenant("s"), strict);
        Assert.False(strictThird.IsCompleted); // bucket 1's idle slots are not for a strict class

        // An atleast class of the same bucket borrows bucket 1's idle slot (nobody waits there)...
        // but it waits behind strictThird in bucket 0's level: the fast path is closed while anyone waits.
        var borrowed = test.Admit(Tenant("a"), atLeast);
        var granted = await Settle(borrowed);
        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        Assert.Equal((2, 1), (test.Model.Slots.UsedBy(0), test.Model.Slots.UsedBy(1)));

        // bucket 1's own class still has the last slot of its guarantee.
        var own = await Settle(test.Admit(Tenant("l"), low));
        Assert.Equal(AdmissionDecision.Granted, own.Decision);
        Assert.False(strictThird.IsCompleted);
    }

    [Fact]
    public async Task Storm_ManyRequestsWithAbortsAndTimeouts_LeakNoSlotAndNoQueueEntry()
    {
        var test = new AdmissionHarness(capacity: 8, queueCapacity: 64);
        var classes = new[] { Class("a", weight: 3, maxQueueWait: TimeSpan.FromMilliseconds(1)), Class("b") };
        var random = new Random(11);
        var tasks = new List<Task>();
        for (var i = 0; i < 2000; i++)
        {
            var cls = classes[i % 2];
            var tenant = Tenant($"t{i % 7}", cls);
            var abort = random.Next(4) == 0;
            var holdFor = random.Next(3);
            tasks.Add(Task.Run(async () =>
            {
                using var client = new CancellationTokenSource();
                var pending = test.Admit(tenant, cls, cancellationToken: client.Token);
                if (abort)
                {
                    await client.CancelAsync();
                }

                var result = await pending;
                if (result.IsAdmitted)
                {
                    await Task.Delay(holdFor);
                    result.Lease.Release(holdFor == 0 ? null : new AotProxy.Accounting.Usage(10, 20));
                }
            }));

            if (i % 100 == 0)
            {
                test.Time.Advance(TimeSpan.FromMilliseconds(1)); // times out class a's waiters
            }
        }

        // The last waiters may need more time to run out or be granted.
        for (var round = 0; round < 200 && tasks.Any(t => !t.IsCompleted); round++)
        {
            test.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.WhenAny(Task.WhenAll(tasks), Task.Delay(50));
        }

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((0, 0), (test.Model.Slots.Used, test.Model.Waiting));
        Assert.All(test.Model.Levels, level => Assert.Equal(0, level.Waiting));
        Assert.All(test.Model.Tenants, tenant => Assert.Equal((0, 0), (tenant.InFlight, tenant.Waiting)));
    }

    private static int PriorityPolicyEffective(int level, double waitedSeconds, double agingSeconds) =>
        AotProxy.Admission.Policies.PriorityPolicy.Effective(level, (long)(waitedSeconds * TimeSpan.TicksPerSecond), (long)(agingSeconds * TimeSpan.TicksPerSecond));

    // Keeps every tenant backlogged (two waiters each) on a pool of one slot and releases `grants`
    // times; returns how many grants each tenant got. Cancels what still waits at the end.
    private static async Task<Dictionary<string, int>> Serve(AdmissionHarness test, int grants, params (TenantModel Tenant, ClassModel Class)[] tenants)
    {
        using var end = new CancellationTokenSource();
        var counts = tenants.ToDictionary(t => t.Tenant.Name, _ => 0);
        var current = await Settle(test.Admit(tenants[0].Tenant, tenants[0].Class));
        var waiting = new List<(Task<AdmissionResult> Pending, TenantModel Tenant, ClassModel Class)>();
        foreach (var (tenant, cls) in tenants)
        {
            for (var i = 0; i < 2; i++)
            {
                waiting.Add((test.Admit(tenant, cls, cancellationToken: end.Token), tenant, cls));
            }
        }

        for (var n = 0; n < grants; n++)
        {
            current.Lease.Release(null);
            var done = await Task.WhenAny(waiting.Select(w => w.Pending)).WaitAsync(TimeSpan.FromSeconds(10));
            var index = waiting.FindIndex(w => w.Pending == done);
            var (_, tenant, cls) = waiting[index];
            current = await done;
            counts[tenant.Name]++;
            waiting[index] = (test.Admit(tenant, cls, cancellationToken: end.Token), tenant, cls);
        }

        await end.CancelAsync();
        current.Lease.Release(null);
        foreach (var (pending, _, _) in waiting)
        {
            var result = await pending.WaitAsync(TimeSpan.FromSeconds(10));
            if (result.IsAdmitted)
            {
                result.Lease.Release(null);
            }
        }

        return counts;
    }
}
