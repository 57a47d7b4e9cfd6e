using AotProxy.Limits;
using AotProxy.Tests.Admission;

namespace AotProxy.Tests.Limits;

public class TokenBucketConcurrencyTests
{
    private const int Threads = 8;
    private const int TakesPerThread = 20_000;

    [Fact]
    public async Task TryTake_ManyThreadsOnAFrozenClock_ExactlyTheCapacitySucceeds()
    {
        const int capacity = 50_000; // of 160,000 attempts
        var bucket = new TokenBucket(capacity, new FakeTimeProvider());
        var taken = new int[Threads];
        using var start = new Barrier(Threads);

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => TestThreads.Start(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < TakesPerThread; i++)
            {
                if (bucket.TryTake(1))
                {
                    taken[t]++;
                }
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(capacity, taken.Sum());
        Assert.Equal(0, bucket.Remaining);
    }

    [Fact]
    public async Task TryTakeAndGiveBack_RacingInPairs_LeaveTheBucketFull()
    {
        var bucket = new TokenBucket(1_000, new FakeTimeProvider());
        using var start = new Barrier(Threads);

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(_ => TestThreads.Start(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < TakesPerThread; i++)
            {
                if (bucket.TryTake(3))
                {
                    bucket.GiveBack(3);
                }
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(1_000, bucket.Remaining);
    }
}
