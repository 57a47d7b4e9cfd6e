using System.Diagnostics;
using AotProxy.Admission;

namespace AotProxy.Tests.Admission;

public class BoundedRingConcurrencyTests
{
    private const int Producers = 4;
    private const int Consumers = 4;
    private const int PerProducer = 50_000;

    // Far above the ~1 s this takes on 2 busy cores; a lost item must fail, not hang.
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TryEnqueueAndTryDequeue_FourProducersFourConsumers_DeliverEveryItemExactlyOnceInProducerOrder()
    {
        // 64 slots for 200,000 items: the ring is full and empty over and over, and wraps ~3,000 times.
        var ring = new BoundedRing<Item>(64);
        var seen = new int[Producers * PerProducer];
        var outOfOrder = 0;
        var consumed = 0;
        var clock = Stopwatch.StartNew();
        using var start = new Barrier(Producers + Consumers);

        var threads = new List<Task>();
        for (var p = 0; p < Producers; p++)
        {
            var producer = p;
            threads.Add(TestThreads.Start(() =>
            {
                start.SignalAndWait();
                var spinner = default(SpinWait);
                for (var i = 0; i < PerProducer; i++)
                {
                    var item = new Item(producer, i);
                    while (!ring.TryEnqueue(item) && clock.Elapsed < Limit)
                    {
                        spinner.SpinOnce(sleep1Threshold: -1);
                    }
                }
            }));
        }

        for (var c = 0; c < Consumers; c++)
        {
            threads.Add(TestThreads.Start(() =>
            {
                start.SignalAndWait();
                // The last sequence number seen from each producer: a linearisable FIFO hands one
                // consumer a producer's items in the order they were enqueued.
                var last = Enumerable.Repeat(-1, Producers).ToArray();
                var spinner = default(SpinWait);
                while (Volatile.Read(ref consumed) < seen.Length && clock.Elapsed < Limit)
                {
                    if (!ring.TryDequeue(out var item))
                    {
                        spinner.SpinOnce(sleep1Threshold: -1);
                        continue;
                    }

                    if (item.Sequence <= last[item.Producer])
                    {
                        Interlocked.Increment(ref outOfOrder);
                    }

                    last[item.Producer] = item.Sequence;
                    Interlocked.Increment(ref seen[(item.Producer * PerProducer) + item.Sequence]);
                    Interlocked.Increment(ref consumed);
                }
            }));
        }

        await Task.WhenAll(threads).WaitAsync(Limit + TimeSpan.FromSeconds(10));

        Assert.True(clock.Elapsed < Limit, $"gave up after {clock.Elapsed}: {consumed} of {seen.Length} consumed");
        Assert.Equal(seen.Length, consumed);
        Assert.Equal(0, outOfOrder);
        var wrong = seen.Select((count, index) => (count, index)).Where(x => x.count != 1).Take(5).ToArray();
        Assert.True(wrong.Length == 0, "items not seen exactly once: " + string.Join(", ", wrong.Select(x => $"#{x.index} x{x.count}")));
        Assert.False(ring.TryDequeue(out _));
        Assert.Equal(0, ring.Count);
    }

    private sealed record Item(int Producer, int Sequence);
}
