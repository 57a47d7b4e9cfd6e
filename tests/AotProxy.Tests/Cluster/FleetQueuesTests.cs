using AotProxy.Admission;
using AotProxy.Cluster;
using AotProxy.Configuration;
using AotProxy.Tests.Admission;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Cluster;

// The fleet-wide estimates of a queued request's position and of the grant rate ([cluster]): each
// replica's flush writes its waiters per level and its grant rate (FleetQueues.Format), and reads
// the others' (Parse); a waiter's position adds the others' waiters at its level or a more
// important one, the grant rate adds theirs, while the last flush is fresh.
public sealed class FleetQueuesTests
{
    [Fact]
    public void Parse_SumsTheOtherReplicas_PerLevel_AndTheirGrantRates()
    {
        var others = FleetQueues.Parse(["1500|0:2,3:4", "500|3:1", "not a field", "0|1:5", "250"]);

        Assert.Equal(2.25, others.GrantRate, 9);
        Assert.Equal(12, others.Waiting);
        Assert.Equal([2L, 7, 7, 12, 12], new[] { 0, 1, 2, 3, 9 }.Select(others.AheadOf));
        Assert.Same(FleetQueues.Empty, FleetQueues.Parse([]));
        Assert.Equal(0, FleetQueues.Empty.AheadOf(3));
    }

    [Fact]
    public async Task Format_IsThisReplicasWaitersPerLevel_AndItsGrantRate()
    {
        var test = new AdmissionHarness(SchedulerPolicyNames.Priority, capacity: 1);
        Assert.Equal(string.Empty, FleetQueues.Format(test.Model)); // nothing waits, nothing granted
        var (high, low) = (Class("high", priority: 1), Class("low", priority: 4));
        var held = await test.Admit(Tenant("a", high), high);
        var queued = new[] { test.Admit(Tenant("a", high), high), test.Admit(Tenant("b", low), low), test.Admit(Tenant("b", low), low) };

        Assert.Equal("100|1:1,4:2", FleetQueues.Format(test.Model)); // one grant in 10 s: 0.1/s
        Assert.Equal(test.Model.Waiting, FleetQueues.Parse([FleetQueues.Format(test.Model)]).Waiting);

        held.Lease.Release(null);
        (await Settle(queued[0])).Lease.Release(null);
        (await Settle(queued[1])).Lease.Release(null);
        (await Settle(queued[2])).Lease.Release(null);
    }

    // Replica B's waiter (priority 2) is behind its own one waiter ahead and the other replicas' 3
    // waiters at priority 0 and 2; their 4 at priority 5 are granted after it. Once the flushes go
    // stale, only B's own queue counts again.
    [Theory]
    [InlineData(false, 2 + 3, 0.1 + 2.0)]
    [InlineData(true, 2, 0.1)]
    public async Task Position_CountsTheOtherReplicasWaitersAtItsLevelOrAMoreImportantOne_WhileFresh(bool stale, int position, double grantRate)
    {
        var test = new AdmissionHarness(SchedulerPolicyNames.Priority, capacity: 1);
        var cls = Class("mid", priority: 2);
        var tenant = Tenant("t", cls);
        var held = await test.Admit(tenant, cls);
        var fleet = new SharedVtc(test.Model, test.Time, TimeSpan.FromMilliseconds(100));
        test.Model.Fleet = fleet;
        fleet.Answered([], [], [], FleetQueues.Parse(["2000|0:1,2:2,5:4"]));
        if (stale)
        {
            test.Time.Advance(TimeSpan.FromMilliseconds(200)); // no flush since
        }

        using var leave = new CancellationTokenSource();
        var first = test.Admit(tenant, cls);
        var second = test.Admit(tenant, cls, cancellationToken: leave.Token);

        await leave.CancelAsync();
        var refused = await Settle(second);

        Assert.Equal((AdmissionDecision.Cancelled, position), (refused.Decision, refused.QueuePosition));
        Assert.Equal(grantRate, refused.GrantRate, 6);
        Assert.Equal(grantRate, test.Model.GrantRate(), 6);
        held.Lease.Release(null);
        (await Settle(first)).Lease.Release(null);
    }
}
