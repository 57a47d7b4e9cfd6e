using AotProxy.Cluster;

namespace AotProxy.Tests.Cluster;

// The lease's debts to other replicas, on the lease alone (no store): one slot per want, paid from
// the unused lease at once or by the next release, ended by "served" or by its time.
public sealed class SlotLeaseTests
{
    private const long Until = 1_000;

    [Fact]
    public void AWant_IsPaidFromTheUnusedLeaseAtOnce_OneSlotPerWant()
    {
        var lease = Leased(slots: 4, used: 1);

        Assert.Equal(1, lease.Wanted(now: 0, Until));
        Assert.Equal(3, lease.Leased);
        Assert.False(lease.IsWanted(0)); // paid
        Assert.Equal(0, lease.Release(0)); // kept: nothing owed
        Assert.Equal(3, lease.Leased);
    }

    [Fact]
    public void AWantOnALeaseInUse_IsPaidByTheNextRelease_AndOnlyThatOne()
    {
        var lease = Leased(slots: 2, used: 2);

        Assert.Equal(0, lease.Wanted(now: 0, Until));
        Assert.True(lease.IsWanted(0));
        Assert.Equal(1, lease.Release(0));
        Assert.Equal(1, lease.Leased);
        Assert.Equal(1, lease.Used);
        Assert.Equal(0, lease.Release(0)); // kept
        Assert.Equal(1, lease.Leased);
    }

    [Fact]
    public void Served_EndsTheDebt()
    {
        var lease = Leased(slots: 2, used: 2);
        lease.Wanted(now: 0, Until);

        lease.Served();

        Assert.False(lease.IsWanted(0));
        Assert.Equal(0, lease.Release(0));
        Assert.Equal(2, lease.Leased);
    }

    // A debt past its time is not paid, and a later want does not add to it: one slot, not two.
    [Fact]
    public void ADebtPastItsTime_IsForgotten()
    {
        var lease = Leased(slots: 3, used: 3);
        lease.Wanted(now: 0, Until);
        Assert.False(lease.IsWanted(Until));

        Assert.Equal(0, lease.Wanted(now: Until, 2 * Until));

        Assert.Equal(1, lease.Release(Until));
        Assert.Equal(0, lease.Release(Until));
        Assert.Equal(2, lease.Leased);
    }

    // A grant of `slots`, of which `used` are taken.
    private static SlotLease Leased(int slots, int used)
    {
        var lease = new SlotLease();
        lease.Granted(slots);
        for (var i = 1; i < used; i++)
        {
            Assert.True(lease.TryUse());
        }

        return lease;
    }
}
