using AotProxy.Limits;

namespace AotProxy.Tests.Limits;

// The bucket on a manual clock: capacity = the per-minute limit, refill = limit/60 per second.
public class TokenBucketTests
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void TryTake_FullBucket_GivesExactlyTheCapacityThenRefuses()
    {
        var bucket = new TokenBucket(60, _clock);

        for (var i = 0; i < 60; i++)
        {
            Assert.True(bucket.TryTake(1), $"take {i + 1} of 60");
        }

        Assert.False(bucket.TryTake(1));
        Assert.Equal(0, bucket.Remaining);
    }

    [Fact]
    public void TryTake_AfterOneSecond_OneTokenOfSixtyPerMinuteIsBack()
    {
        var bucket = new TokenBucket(60, _clock);
        Assert.True(bucket.TryTake(60));

        _clock.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(bucket.TryTake(1));
        _clock.Advance(TimeSpan.FromMilliseconds(1));

        Assert.True(bucket.TryTake(1));
        Assert.False(bucket.TryTake(1));
    }

    [Fact]
    public void Remaining_PartialRefill_GrowsWithTimeAtLimitOverSixtyPerSecond()
    {
        var bucket = new TokenBucket(600, _clock); // 10 tokens per second
        Assert.True(bucket.TryTake(600));

        _clock.Advance(TimeSpan.FromSeconds(2.5));

        Assert.Equal(25, bucket.Remaining);
        Assert.False(bucket.TryTake(26));
        Assert.True(bucket.TryTake(25));
        Assert.Equal(0, bucket.Remaining);
    }

    [Fact]
    public void Remaining_LongIdle_NeverAboveCapacity()
    {
        var bucket = new TokenBucket(10, _clock);
        Assert.True(bucket.TryTake(4));

        _clock.Advance(TimeSpan.FromHours(3));

        Assert.Equal(10, bucket.Remaining);
        Assert.True(bucket.TryTake(10));
        Assert.False(bucket.TryTake(1));
    }

    [Fact]
    public void GiveBack_MoreThanTaken_TopsOutAtCapacity()
    {
        var bucket = new TokenBucket(10, _clock);
        Assert.True(bucket.TryTake(3));

        bucket.GiveBack(3);
        bucket.GiveBack(100);

        Assert.Equal(10, bucket.Remaining);
        Assert.True(bucket.TryTake(10));
        Assert.False(bucket.TryTake(1));
    }

    [Fact]
    public void TryTake_MoreThanTheCapacity_NeverFits()
    {
        var bucket = new TokenBucket(100, _clock);

        Assert.False(bucket.TryTake(101));
        Assert.Equal(100, bucket.Remaining);
    }

    [Fact]
    public void Charge_BeyondTheBalance_IsOwedAndDelaysTheNextTake()
    {
        var bucket = new TokenBucket(60, _clock);
        Assert.True(bucket.TryTake(50));

        bucket.Charge(20); // 10 tokens of debt: 10 s at one per second

        Assert.Equal(0, bucket.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(11), bucket.TimeUntil(1));
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.False(bucket.TryTake(1));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(bucket.TryTake(1));
    }

    [Fact]
    public void TimeUntil_EmptyBucket_IsTheRefillTimeOfWhatIsAsked()
    {
        var bucket = new TokenBucket(120, _clock); // 2 tokens per second
        Assert.True(bucket.TryTake(120));

        Assert.Equal(TimeSpan.FromSeconds(0.5), bucket.TimeUntil(1));
        Assert.Equal(TimeSpan.FromSeconds(5), bucket.TimeUntil(10));
        Assert.Equal(TimeSpan.FromMinutes(1), bucket.TimeUntilFull());
        Assert.Equal(TimeSpan.FromMinutes(1), bucket.TimeUntil(1000)); // above the capacity: until full

        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntil(10));
        Assert.True(bucket.TryTake(10));
    }

    [Fact]
    public void TimeUntil_TokensThere_IsZero()
    {
        var bucket = new TokenBucket(5, _clock);

        Assert.Equal(TimeSpan.Zero, bucket.TimeUntil(5));
        Assert.Equal(TimeSpan.Zero, bucket.TimeUntilFull());
    }

    [Fact]
    public void Constructor_UsedTokens_StartPartlyEmpty()
    {
        var bucket = new TokenBucket(100, _clock, used: 30);

        Assert.Equal(70, bucket.Remaining);
        Assert.Equal(30, bucket.Used);
    }

    [Fact]
    public void TryTake_CapacityNotDividingTheMinute_StillGivesExactlyTheCapacity()
    {
        var bucket = new TokenBucket(7, _clock); // 8.571... s per token on a 10 MHz clock

        for (var i = 0; i < 7; i++)
        {
            Assert.True(bucket.TryTake(1));
        }

        Assert.False(bucket.TryTake(1));
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(7, bucket.Remaining);
    }
}
