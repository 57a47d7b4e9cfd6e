using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Admission;

// Preemption before the first byte ([[classes]] preemptible): the race with the first byte, the
// requeue at the head, the slot handed to the waiter, and nothing counted twice.
public sealed class PreemptionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private static readonly ClassModel Free = Class("free", priority: 2);
    private static readonly ClassModel Enterprise = Class("enterprise", priority: 0);

    [Fact]
    public async Task Ticket_FirstByteAndPreemptionRace_ExactlyOneWins()
    {
        var account = new FairShareAccount("free");
        for (var i = 0; i < 500; i++)
        {
            var ticket = new PreemptionTicket();
            ticket.Arm(2, account);
            var armed = ticket.State; // what the dispatcher saw
            using var go = new Barrier(2);
            var start = Task.Run(() => { go.SignalAndWait(Bound); return ticket.TryStart(); });
            var preempt = Task.Run(() => { go.SignalAndWait(Bound); return ticket.TryPreempt(armed); });
            var (started, preempted) = (await start.WaitAsync(Bound), await preempt.WaitAsync(Bound));

            Assert.True(started ^ preempted, $"round {i}: started={started} preempted={preempted}");
            Assert.Equal(preempted, ticket.IsPreempted);
            Assert.Equal(preempted, ticket.Finish()); // the stage's view agrees
        }
    }

    [Fact]
    public void Ticket_ReusedByTheNextRequest_IsNotPreemptedForTheUseTheDispatcherSaw()
    {
        var ticket = new PreemptionTicket();
        ticket.Arm(2, new FairShareAccount("free"));
        var seen = ticket.State;
        Assert.False(ticket.Finish()); // that request ended
        ticket.Reset();
        ticket.Arm(2, new FairShareAccount("free")); // the pooled request's next use

        Assert.False(ticket.TryPreempt(seen));
        Assert.True(ticket.IsArmed);
        Assert.True(ticket.TryPreempt(ticket.State));
    }

    [Fact]
    public async Task Preempt_FreeRequestBeforeItsFirstByte_SlotGoesToTheEnterpriseWaiter_AndItIsRequeuedAtTheHead()
    {
        var test = new AdmissionHarness(capacity: 1);
        var f = Tenant("f", Free);
        var (victim, ticket) = await RunningAsync(test, f);
        var behind = test.Admit(f, Free); // the same tenant's next request, queued before the preemption
        var chargedOnce = Account(test, "f").Counter;

        var urgent = test.Admit(Tenant("e", Enterprise), Enterprise);

        Assert.True(ticket.IsPreempted);
        Assert.True(ticket.Token.WaitHandle.WaitOne(Bound), "the attempt is cancelled upstream");
        Assert.False(urgent.IsCompleted); // until the victim's slot comes back
        var requeued = Requeue(victim, ticket);
        var granted = await Settle(urgent);

        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        Assert.Equal(1, ClassAccount(test, "free").Preemptions);
        Assert.Equal(0, Account(test, "f").InFlight); // the victim is not in flight while it waits again
        Assert.False(requeued.IsCompleted);

        granted.Lease.Release(null);
        var again = await Settle(requeued);

        Assert.Equal(AdmissionDecision.Granted, again.Decision); // ahead of the request that queued before it
        Assert.False(behind.IsCompleted);
        Assert.Equal(chargedOnce, Account(test, "f").Counter); // its first grant's charge, not a second one
        Assert.Equal(1, Account(test, "f").InFlight);
        again.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(behind)).Decision);
    }

    [Fact]
    public async Task Preempt_TheSlotGoesToTheWaiter_EvenWhenFairShareWouldGiveItToTheFreeClass()
    {
        var test = new AdmissionHarness(capacity: 1);
        var e = Tenant("e", Enterprise);
        // Enterprise has been served far more: by fair share alone, the free class is owed the next slot.
        (await test.Admit(e, Enterprise, promptTokens: 10_000)).Lease.Release(null);
        var (victim, ticket) = await RunningAsync(test, Tenant("f", Free));
        var other = test.Admit(Tenant("g", Free), Free); // another free request, waiting
        var urgent = test.Admit(e, Enterprise);
        Assert.True(ticket.IsPreempted);
        Assert.True(ClassAccount(test, "enterprise").Counter > ClassAccount(test, "free").Counter);

        var requeued = Requeue(victim, ticket);

        Assert.Equal(AdmissionDecision.Granted, (await Settle(urgent)).Decision); // not through the policy
        Assert.False(requeued.IsCompleted || other.IsCompleted);
        (await urgent).Lease.Release(null);
        (await (await Task.WhenAny(requeued, other).WaitAsync(Bound))).Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(requeued)).Decision);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(other)).Decision);
    }

    [Fact]
    public async Task Preempt_AStartedStream_IsNeverPreempted_TheWaiterGetsTheNextFreeSlot()
    {
        var test = new AdmissionHarness(capacity: 1);
        var (running, ticket) = await RunningAsync(test, Tenant("f", Free));
        Assert.True(ticket.TryStart());

        var urgent = test.Admit(Tenant("e", Enterprise), Enterprise);

        Assert.False(ticket.IsPreempted);
        Assert.False(urgent.IsCompleted);
        Assert.Equal(0, ClassAccount(test, "free").Preemptions);
        running.Lease.Unregister(ticket);
        running.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(urgent)).Decision);
    }

    [Fact]
    public async Task Preempt_AtMostOncePerRequest_AndNeverForAnEqualOrLessImportantClass()
    {
        var test = new AdmissionHarness(capacity: 1);
        var f = Tenant("f", Free);
        var (victim, ticket) = await RunningAsync(test, f);

        var sameClass = test.Admit(f, Free);
        Assert.False(ticket.IsPreempted); // a waiter of its own class preempts nothing

        var urgent = test.Admit(Tenant("e", Enterprise), Enterprise);
        Assert.True(ticket.IsPreempted);
        var requeued = Requeue(victim, ticket);
        var first = await Settle(urgent);
        first.Lease.Release(null);
        var again = await Settle(requeued);
        again.Lease.Register(ticket, Free.Priority); // what AdmissionStage does: a preempted request is not armed again

        var second = test.Admit(Tenant("e2", Enterprise), Enterprise);

        Assert.False(ticket.IsArmed);
        Assert.False(second.IsCompleted);
        Assert.Equal(1, ClassAccount(test, "free").Preemptions);
        again.Lease.Unregister(ticket);
        again.Lease.Release(null);
        var next = await Task.WhenAny(second, sameClass).WaitAsync(Bound);
        (await next).Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(second)).Decision);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(sameClass)).Decision);
    }

    // The book has a free slot but no worker has room, as with [cluster] when the worker's slots
    // are full fleet-wide (alone: a worker shared with another model is full). The enterprise
    // waiter preempts the free request, and gets its worker slot itself, handed over, not released
    // for another taker: the worker never holds more than its one slot, and never less.
    [Fact]
    public async Task Preempt_NoWorkerHasRoomThoughTheBookHasASlot_PreemptsAndHandsTheWorkerSlotOver()
    {
        var time = new FakeTimeProvider();
        var router = new Router(time, new Random(7), NullLogger.Instance);
        var snapshot = Snapshots.Create([Worker("w0", 1, "a"), Worker("w1", 2, "a", "b")]);
        WorkerState[] workers = [.. snapshot.Workers.Select(m => new WorkerState(m, time))];
        var set = new WorkerSet(workers);
        var a = Pool("a");
        var b = Pool("b");
        var other = await AdmitTo(b, "b", Free); // b's request holds w1, the worker a shares with b
        var victim = await AdmitTo(a, "a", Free);
        Assert.Same(workers[0], victim.Slot.Worker);
        var ticket = new PreemptionTicket();
        victim.Lease.Register(ticket, Free.Priority);

        var urgent = AdmitTo(a, "a", Enterprise);

        Assert.Equal(1, a.Slots.Free); // the book had room: only the workers are full
        Assert.True(ticket.IsPreempted, "a full worker, not only a full book, makes the enterprise waiter preempt");
        var requeued = Requeue(victim, ticket);
        var granted = await Settle(urgent);

        Assert.Equal(AdmissionDecision.Granted, granted.Decision);
        Assert.Same(workers[0], granted.Slot.Worker);
        Assert.Equal(BreakerPermit.Normal, granted.Slot.Permit); // a new permit for its attempt
        Assert.Equal([1, 1], workers.Select(w => w.SlotsTaken));
        Assert.False(requeued.IsCompleted);

        var slot = granted.Slot;
        slot.Release();
        granted.Lease.Release(null);
        var again = await Settle(requeued);
        Assert.Equal((AdmissionDecision.Granted, workers[0]), (again.Decision, again.Slot.Worker));
        slot = again.Slot;
        slot.Release();
        again.Lease.Release(null);
        slot = other.Slot;
        slot.Release();
        other.Lease.Release(null);
        Assert.Equal([0, 0], workers.Select(w => w.SlotsTaken));

        ModelAdmission Pool(string model)
        {
            var admission = new ModelAdmission(model, snapshot.Scheduler, new WaiterPool(time, 64), time, router);
            admission.Apply(set.Pools[model].Capacity(snapshot), set.Pools[model], snapshot);
            return admission;
        }
    }

    // [cluster]: the waiter that got a preempted request's worker slot, with the fleet's grant on
    // it, takes its turn on the fleet at once, even where the fleet's rule would make it wait (its
    // tenant far ahead): the preempted request's turn was given, and it takes no second one.
    [Fact]
    public async Task FleetTurn_HandedOverSlot_IsTakenAtOnceAndCharged_WhereTheRuleWouldMakeItWait()
    {
        var test = new AdmissionHarness(capacity: 1);
        var fleet = new SharedVtc(test.Model, test.Time, TimeSpan.FromMinutes(1));
        fleet.Tenant("e").Add(SharedVtc.ToMicro(10_000)); // far ahead of the fleet's least served
        fleet.Answered([], [], [new("f", 0)]);
        using var cancel = new CancellationTokenSource();

        var waits = fleet.TakeTurnAsync("e", 1, 100, TimeSpan.FromMinutes(1), cancel.Token).AsTask();
        var handedOver = fleet.TakeTurnAsync("e", 1, 100, TimeSpan.FromMinutes(1), cancel.Token, handedOver: true);

        Assert.False(waits.IsCompleted);
        Assert.True(handedOver.IsCompletedSuccessfully);
        Assert.True(await handedOver);
        Assert.Equal(SharedVtc.ToMicro(10_100), fleet.Tenant("e").Counter); // its own charge, once
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waits.WaitAsync(Bound));
    }

    // bucket policy, buckets 0, 1, 2 of one slot each: enterprise owns 0, standard (preemptible) 1,
    // free 2. Standard borrowed free's idle bucket 2 and holds its own bucket 1. An enterprise
    // waiter (bucket 0 full) preempts the borrowed slot, which it may borrow too, never the slot of
    // standard's own bucket: a bucket's guarantee to its class stands.
    [Fact]
    public async Task Preempt_BucketPolicy_TakesABorrowedLowerBucketsSlot_NeverTheHoldersOwnBucket()
    {
        var test = new AdmissionHarness(SchedulerPolicyNames.Bucket, capacity: 3, shares: [1 / 3.0, 1 / 3.0, 1 / 3.0]);
        var enterprise = Class("enterprise", priority: 0, firstBucket: 0, lastBucket: 0);
        var standard = Class("standard", priority: 1, firstBucket: 1, lastBucket: 1);
        var first = await test.Admit(Tenant("e", enterprise), enterprise);
        var own = await test.Admit(Tenant("s", standard), standard);
        var borrowed = await test.Admit(Tenant("s", standard), standard);
        Assert.Equal([1, 1, 1], Enumerable.Range(0, 3).Select(test.Model.Slots.UsedBy));
        var ownTicket = new PreemptionTicket();
        own.Lease.Register(ownTicket, standard.Priority, standard);
        var borrowedTicket = new PreemptionTicket();
        borrowed.Lease.Register(borrowedTicket, standard.Priority, standard);

        var urgent = test.Admit(Tenant("e", enterprise), enterprise);

        Assert.True(borrowedTicket.IsPreempted);
        Assert.False(ownTicket.IsPreempted);
        var requeued = Requeue(borrowed, borrowedTicket, standard);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(urgent)).Decision);
        Assert.Equal([1, 1, 1], Enumerable.Range(0, 3).Select(test.Model.Slots.UsedBy)); // the slot moved within bucket 2

        var second = test.Admit(Tenant("e2", enterprise), enterprise); // nothing borrowed is left to take
        Assert.False(ownTicket.IsPreempted);
        Assert.False(second.IsCompleted || requeued.IsCompleted);
        first.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(second)).Decision);
        own.Lease.Unregister(ownTicket);
        own.Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(requeued)).Decision);
    }

    [Fact]
    public async Task Requeue_PriorityPolicy_AgesTheVictimFromItsFirstArrival_NotFromTheRequeue()
    {
        // Aging interval 1 s (aging_factor 1, no request finished yet): a free request (P2) that
        // arrived 2 s ago competes as P0, ahead of a premium one (P1) that arrived now.
        var test = new AdmissionHarness(SchedulerPolicyNames.Priority, capacity: 1, agingFactor: 1.0);
        var premium = Class("premium", priority: 1);
        var (victim, ticket) = await RunningAsync(test, Tenant("f", Free));
        test.Time.Advance(TimeSpan.FromSeconds(2));

        var urgent = test.Admit(Tenant("e", Enterprise), Enterprise);
        Assert.True(ticket.IsPreempted);
        var requeued = Requeue(victim, ticket);
        var granted = await Settle(urgent);
        var later = test.Admit(Tenant("p", premium), premium);
        granted.Lease.Release(null);

        Assert.Equal(AdmissionDecision.Granted, (await Settle(requeued)).Decision); // restarted at the requeue, it would be P2 behind P1
        Assert.False(later.IsCompleted);
        (await requeued).Lease.Release(null);
        Assert.Equal(AdmissionDecision.Granted, (await Settle(later)).Decision);
    }

    private static WorkerModel Worker(string name, int port, params string[] models) =>
        new(name, new Uri($"http://127.0.0.1:{port}/"), [.. models], 1, 1, string.Empty);

    private static Task<AdmissionResult> AdmitTo(ModelAdmission model, string tenant, ClassModel classModel) =>
        model.AdmitAsync(new AdmissionRequest(Tenant(tenant, classModel), classModel, classModel.Priority, 100), CancellationToken.None).AsTask();

    // An admitted free request, preemptible, that has sent nothing yet (what AdmissionStage does).
    private static async Task<(AdmissionResult Admitted, PreemptionTicket Ticket)> RunningAsync(AdmissionHarness test, TenantModel tenant)
    {
        var admitted = await test.Admit(tenant, Free);
        var ticket = new PreemptionTicket();
        admitted.Lease.Register(ticket, Free.Priority);
        return (admitted, ticket);
    }

    // What AdmissionStage.RequeueAsync does with a preempted request (its attempt kept its worker
    // slot, ForwardingStage, and it goes with the admission slot).
    private static Task<AdmissionResult> Requeue(AdmissionResult victim, PreemptionTicket ticket, ClassModel? classModel = null)
    {
        var slot = victim.Slot;
        var cls = classModel ?? Free;
        var requeued = victim.Lease.RequeueAsync(ticket, cls, cls.Priority, ref slot, null, CancellationToken.None).AsTask();
        Assert.False(slot.IsHeld); // handed over
        ticket.Requeued();
        return requeued;
    }

    private static FairShareAccount Account(AdmissionHarness test, string tenant) => test.Model.Tenants.Single(a => a.Name == tenant);

    private static FairShareAccount ClassAccount(AdmissionHarness test, string name) => test.Model.Classes.Single(a => a.Name == name);
}
