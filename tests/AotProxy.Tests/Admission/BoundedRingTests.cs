using System.Runtime.CompilerServices;
using AotProxy.Admission;

namespace AotProxy.Tests.Admission;

public class BoundedRingTests
{
    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(5, 8)]
    [InlineData(1000, 1024)]
    [InlineData(1 << 20, 1 << 20)]
    public void Constructor_Capacity_RoundsUpToAPowerOfTwoOfAtLeastTwo(int requested, int expected)
    {
        Assert.Equal(expected, new BoundedRing<object>(requested).Capacity);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData((1 << 20) + 1)]
    public void Constructor_CapacityOutOfRange_Throws(int capacity)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BoundedRing<object>(capacity));
    }

    [Fact]
    public void TryDequeue_AfterEnqueues_ReturnsItemsInFifoOrder()
    {
        var ring = new BoundedRing<string>(8);
        var items = Enumerable.Range(0, 8).Select(i => $"item-{i}").ToArray();

        foreach (var item in items)
        {
            Assert.True(ring.TryEnqueue(item));
        }

        foreach (var item in items)
        {
            Assert.True(ring.TryDequeue(out var dequeued));
            Assert.Same(item, dequeued);
        }
    }

    [Fact]
    public void TryEnqueue_WhenFull_ReturnsFalseUntilOneIsDequeued()
    {
        var ring = new BoundedRing<object>(4);
        var items = Enumerable.Range(0, 5).Select(_ => new object()).ToArray();

        for (var i = 0; i < 4; i++)
        {
            Assert.True(ring.TryEnqueue(items[i]));
        }

        Assert.False(ring.TryEnqueue(items[4]));
        Assert.Equal(4, ring.Count);

        Assert.True(ring.TryDequeue(out var first));
        Assert.Same(items[0], first);
        Assert.True(ring.TryEnqueue(items[4]));
        Assert.False(ring.TryEnqueue(new object()));
    }

    [Fact]
    public void TryDequeue_WhenEmpty_ReturnsFalseAndNull()
    {
        var ring = new BoundedRing<object>(4);

        Assert.False(ring.TryDequeue(out var item));
        Assert.Null(item);

        ring.TryEnqueue(new object());
        ring.TryDequeue(out _);
        Assert.False(ring.TryDequeue(out item));
        Assert.Null(item);
        Assert.Equal(0, ring.Count);
    }

    [Fact]
    public void TryEnqueueAndTryDequeue_ManyLapsPastCapacity_KeepOrderAndCount()
    {
        var ring = new BoundedRing<object>(4);
        var items = Enumerable.Range(0, 3).Select(_ => new object()).ToArray();

        // 10,000 laps of 3 over 4 slots: every slot is reused thousands of times, at every offset.
        for (var lap = 0; lap < 10_000; lap++)
        {
            foreach (var item in items)
            {
                Assert.True(ring.TryEnqueue(item));
            }

            Assert.Equal(3, ring.Count);
            foreach (var item in items)
            {
                Assert.True(ring.TryDequeue(out var dequeued));
                Assert.Same(item, dequeued);
            }

            Assert.Equal(0, ring.Count);
        }
    }

    [Fact]
    public void Count_StaysBetweenZeroAndCapacity()
    {
        var ring = new BoundedRing<object>(2);
        var item = new object();
        var counts = new List<int> { ring.Count };

        for (var i = 0; i < 3; i++)
        {
            ring.TryEnqueue(item);
            counts.Add(ring.Count);
        }

        for (var i = 0; i < 3; i++)
        {
            ring.TryDequeue(out _);
            counts.Add(ring.Count);
        }

        Assert.Equal([0, 1, 2, 2, 1, 0, 0], counts);
    }

    [Fact]
    public void TryPeek_ReturnsTheHeadWithoutRemovingIt()
    {
        var ring = new BoundedRing<string>(4);
        Assert.False(ring.TryPeek(out var peeked));
        Assert.Null(peeked);

        ring.TryEnqueue("first");
        ring.TryEnqueue("second");

        Assert.True(ring.TryPeek(out peeked));
        Assert.Equal("first", peeked);
        Assert.True(ring.TryPeek(out peeked));
        Assert.Equal("first", peeked);
        Assert.Equal(2, ring.Count);

        ring.TryDequeue(out _);
        Assert.True(ring.TryPeek(out peeked));
        Assert.Equal("second", peeked);
        ring.TryDequeue(out _);
        Assert.False(ring.TryPeek(out _));
    }

    [Fact]
    public void TryDequeue_ClearsTheSlot_SoTheRingDoesNotKeepTheItemAlive()
    {
        var ring = new BoundedRing<object>(2);

        var dequeued = EnqueueAndDequeue(ring);
        var stillQueued = EnqueueOnly(ring);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.False(dequeued.IsAlive);
        // The control: an item still in the ring is kept alive by it.
        Assert.True(stillQueued.IsAlive);
        GC.KeepAlive(ring);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference EnqueueAndDequeue(BoundedRing<object> ring)
    {
        var item = new object();
        Assert.True(ring.TryEnqueue(item));
        Assert.True(ring.TryDequeue(out var dequeued));
        Assert.Same(item, dequeued);
        return new WeakReference(item);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference EnqueueOnly(BoundedRing<object> ring)
    {
        var item = new object();
        Assert.True(ring.TryEnqueue(item));
        return new WeakReference(item);
    }
}
