using AotProxy.Limits;

namespace AotProxy.Tests.Limits;

// A tenant's RPM or TPM: the token bucket's refill and the sliding minute, both asked.
public class MinuteLimitTests
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void TryTake_RefusedByTheWindow_GivesTheBucketItsTokensBack()
    {
        var limit = new MinuteLimit(60, _clock);
        Assert.True(limit.TryTake(60, _clock.GetTimestamp()));

        // 30 s on, the bucket has refilled 30, but the minute still holds 60.
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.False(limit.TryTake(1, _clock.GetTimestamp()));
        Assert.Equal(0, limit.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(31), limit.TimeUntil(1));

        // Once the minute has passed, the bucket (full again) gives all 60: nothing leaked from it.
        _clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(60, limit.Remaining);
        Assert.True(limit.TryTake(60, _clock.GetTimestamp()));
    }

    [Fact]
    public void TryTake_RefusedByTheBucket_LeavesTheWindowAlone()
    {
        var limit = new MinuteLimit(60, _clock);
        Assert.True(limit.TryTake(50, _clock.GetTimestamp()));

        Assert.False(limit.TryTake(20, _clock.GetTimestamp()));

        Assert.Equal(10, limit.Remaining);
        Assert.Equal(50, limit.Used);
    }

    [Fact]
    public void GiveBack_ReturnsToBoth()
    {
        var limit = new MinuteLimit(100, _clock);
        var takenAt = _clock.GetTimestamp();
        Assert.True(limit.TryTake(100, takenAt));

        limit.GiveBack(40, takenAt);

        Assert.Equal(40, limit.Remaining);
        Assert.True(limit.TryTake(40, _clock.GetTimestamp()));
    }

    [Fact]
    public void Settle_AboveTheReservation_IsOwedToBoth_AndTheResetWaitsForTheLaterOfThem()
    {
        var limit = new MinuteLimit(60, _clock);
        Assert.True(limit.TryTake(30, _clock.GetTimestamp()));
        limit.Settle(30, 60, _clock.GetTimestamp());

        Assert.Equal(0, limit.Remaining);
        // The bucket is full again after 60 s; the window empties when the take's second leaves it, at 61 s.
        Assert.Equal(TimeSpan.FromSeconds(61), limit.TimeUntilFull());
    }

    [Fact]
    public void Reload_ToANewLimit_CarriesTheMinuteOver()
    {
        var before = new MinuteLimit(10, _clock);
        Assert.True(before.TryTake(10, _clock.GetTimestamp()));

        var after = new MinuteLimit(30, _clock, before);

        Assert.Equal(20, after.Remaining);
        Assert.False(after.TryTake(21, _clock.GetTimestamp()));
        Assert.True(after.TryTake(20, _clock.GetTimestamp()));
    }
}
