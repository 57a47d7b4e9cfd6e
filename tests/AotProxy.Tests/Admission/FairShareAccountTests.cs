using AotProxy.Admission;

namespace AotProxy.Tests.Admission;

// The counter with refunds and lifts. The expected values are those of charging the exact cost
// up front (the usage's cost in place of the estimate), worked out by hand in each comment:
// a refund may never leave the counter below that, which would be credit the lift took away.
public sealed class FairShareAccountTests
{
    [Fact]
    public void Refund_NoLiftSinceTheCharge_GivesAllOfItBack()
    {
        var account = new FairShareAccount("a");
        var lifts = account.Lifts;
        account.Charge(1000);
        account.Charge(50);

        account.Refund(900, lifts);

        Assert.Equal(150, account.Counter); // exact: 100 + 50
    }

    [Fact]
    public void Refund_OfAChargeTheLiftForgave_GivesNothingBack_EvenAfterLaterCharges()
    {
        var account = new FairShareAccount("a");
        var lifts = account.Lifts;
        account.Charge(1000);       // 900 of it over-estimated
        account.LiftTo(1500);       // back from idle: the others are at 1,500
        account.Charge(500);        // served since

        account.Refund(900, lifts);

        // Exact: 100, lifted to 1,500, + 500 = 2,000. A clamp to the lift's 1,500 would give 500 away.
        Assert.Equal(2000, account.Counter);
    }

    [Fact]
    public void Refund_OfAChargeBeforeALiftThatDidNotRaiseTheCounter_GivesBackWhatStandsAboveTheFloor()
    {
        var account = new FairShareAccount("a");
        var lifts = account.Lifts;
        account.Charge(1000);       // 900 over-estimated
        account.LiftTo(600);        // the floor is below the counter: no raise, but a floor
        account.Charge(200);

        account.Refund(900, lifts);

        // Exact: 100, lifted to 600, + 200 = 800.
        Assert.Equal(800, account.Counter);
        Assert.True(account.Lifts > lifts);
    }

    [Fact]
    public void Refund_OfAChargeAfterTheLift_GivesAllOfItBack()
    {
        var account = new FairShareAccount("a");
        account.Charge(300);
        account.LiftTo(1000);
        var lifts = account.Lifts;
        account.Charge(900);        // 800 over-estimated, charged after the lift

        account.Refund(800, lifts);

        Assert.Equal(1100, account.Counter); // exact: 300, lifted to 1,000, + 100
    }

    [Fact]
    public void Refund_TwoLifts_TheLaterFloorHolds()
    {
        var account = new FairShareAccount("a");
        var before = account.Lifts;
        account.Charge(1000);       // 900 over-estimated
        account.LiftTo(1200);
        var between = account.Lifts;
        account.Charge(400);        // 300 over-estimated, between the lifts
        account.LiftTo(1700);       // raises from 1,600

        account.Refund(300, between);
        account.Refund(900, before);

        // Exact: 100 -> 1,200 -> +100 = 1,300 -> 1,700.
        Assert.Equal(1700, account.Counter);
    }

    [Fact]
    public void Refund_ALiftBelowTheEstimatedCounter_StillHolds()
    {
        var account = new FairShareAccount("a");
        account.Charge(1000);
        account.LiftTo(1200);
        var between = account.Lifts;
        account.Charge(400);        // 300 over-estimated
        account.LiftTo(1400);       // below the counter (1,600), but above the exact one (1,300)

        account.Refund(300, between);

        // Exact: 1,000 -> 1,200 -> +100 = 1,300 -> 1,400. Never below it (a full refund would
        // leave 1,300); one floor for two lifts errs towards keeping the charge, at most the 300.
        Assert.InRange(account.Counter, 1400, 1600);
    }

    [Fact]
    public void Settle_PositiveCharges_NegativeRefunds()
    {
        var account = new FairShareAccount("a");
        var lifts = account.Lifts;
        account.Charge(100);

        account.Settle(-40, lifts);
        account.Settle(25, lifts);

        Assert.Equal(85, account.Counter);
    }

    [Fact]
    public void LiftTo_BelowTheCounter_LeavesTheCounter()
    {
        var account = new FairShareAccount("a");
        account.Charge(100);

        account.LiftTo(40);

        Assert.Equal(100, account.Counter);
    }
}
