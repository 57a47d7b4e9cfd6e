using System.Collections.Immutable;
using AotProxy.Admission;
using AotProxy.Configuration;

namespace AotProxy.Tests.Admission;

public sealed class SlotBookTests
{
    [Theory]
    [InlineData(10, new[] { 0.5, 0.25, 0.25 }, new[] { 5, 3, 2 })] // 2.5 + 2.5: the first remainder wins the last slot
    [InlineData(3, new[] { 0.5, 0.25, 0.25 }, new[] { 1, 1, 1 })] // 1.5, 0.75, 0.75: the larger remainders first
    [InlineData(0, new[] { 0.5, 0.5 }, new[] { 0, 0 })]
    [InlineData(64, new[] { 1.0 }, new[] { 64 })]
    public void Apportion_GuaranteesAddUpToTheCapacity(int capacity, double[] shares, int[] expected)
    {
        var guaranteed = SlotBook.Apportion(capacity, [.. shares]);

        Assert.Equal(expected, guaranteed);
        Assert.Equal(capacity, guaranteed.Sum());
    }

    [Fact]
    public void Apportion_DefaultShares_GiveTheLastBucketASlotOf64()
    {
        var guaranteed = SlotBook.Apportion(64, SchedulerModel.GeometricShares(10));

        Assert.Equal(64, guaranteed.Sum());
        Assert.True(guaranteed[0] > guaranteed[9], string.Join(",", guaranteed));
        Assert.True(guaranteed[9] >= 1, string.Join(",", guaranteed));
    }

    [Fact]
    public void TryTake_NeverOvershootsTheCapacity_UnderContention()
    {
        var slots = new SlotBook();
        slots.Resize(100, [1.0]);
        var taken = 0;

        Parallel.For(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            if (slots.TryTake())
            {
                Interlocked.Increment(ref taken);
            }
        });

        Assert.Equal(100, taken);
        Assert.Equal(100, slots.Used);
        Assert.False(slots.TryTake());
        slots.Release(SlotBook.Unbucketed);
        Assert.True(slots.TryTake());
    }

    [Fact]
    public void TryTakeBucket_StaysWithinTheBucketsGuarantee()
    {
        var slots = new SlotBook();
        slots.Resize(4, [0.75, 0.25]);

        Assert.True(slots.TryTakeBucket(1));
        Assert.False(slots.TryTakeBucket(1)); // bucket 1 has 1 of 4
        Assert.True(slots.TryTakeBucket(0));
        Assert.True(slots.TryTakeBucket(0));
        Assert.True(slots.TryTakeBucket(0));
        Assert.False(slots.TryTakeBucket(0));
        Assert.Equal((4, 3, 1), (slots.Used, slots.UsedBy(0), slots.UsedBy(1)));

        slots.Release(1);
        Assert.Equal((3, 0), (slots.Used, slots.UsedBy(1)));
        Assert.True(slots.TryTakeBucket(1));
    }

    [Fact]
    public void Resize_Shrunk_TakesNothingUntilReleasesBringItUnder()
    {
        var slots = new SlotBook();
        slots.Resize(4, [1.0]);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(slots.TryTake());
        }

        slots.Resize(2, [1.0]); // two workers' worth of slots went away

        Assert.False(slots.TryTake());
        slots.Release(SlotBook.Unbucketed);
        slots.Release(SlotBook.Unbucketed);
        Assert.False(slots.TryTake());
        slots.Release(SlotBook.Unbucketed);
        Assert.True(slots.TryTake());
        Assert.Equal(0, slots.Free);
    }

    [Fact]
    public void Resize_SameCapacityAndShares_KeepsTheGuarantees()
    {
        var slots = new SlotBook();
        ImmutableArray<double> shares = [0.5, 0.5];
        slots.Resize(10, shares);
        Assert.Equal(5, slots.Guaranteed(0));

        slots.Resize(10, shares);
        slots.Resize(12, shares);

        Assert.Equal((6, 6), (slots.Guaranteed(0), slots.Guaranteed(1)));
    }
}
