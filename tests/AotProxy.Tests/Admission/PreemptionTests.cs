using AotProxy.Admission;
using AotProxy.Configuration;
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

    // An admitted free request, preemptible, that has sent nothing yet (what AdmissionStage does).
    private static async Task<(AdmissionResult Admitted, PreemptionTicket Ticket)> RunningAsync(AdmissionHarness test, TenantModel tenant)
    {
        var admitted = await test.Admit(tenant, Free);
        var ticket = new PreemptionTicket();
        admitted.Lease.Register(ticket, Free.Priority);
        return (admitted, ticket);
    }

    // What AdmissionStage.RequeueAsync does with a preempted request.
    private static Task<AdmissionResult> Requeue(AdmissionResult victim, PreemptionTicket ticket)
    {
        var requeued = victim.Lease.RequeueAsync(ticket, Free, Free.Priority, CancellationToken.None).AsTask();
        ticket.Requeued();
        return requeued;
    }

    private static FairShareAccount Account(AdmissionHarness test, string tenant) => test.Model.Tenants.Single(a => a.Name == tenant);

    private static FairShareAccount ClassAccount(AdmissionHarness test, string name) => test.Model.Classes.Single(a => a.Name == name);
}
