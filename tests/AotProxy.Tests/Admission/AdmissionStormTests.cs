using System.Collections.Concurrent;
using System.Diagnostics;
using AotProxy.Admission;

namespace AotProxy.Tests.Admission;

// Many threads at once on the same waiters. The counts a test can rely on are asserted exactly;
// how the races fall (how many grants, how many tombstones) changes from run to run.
public class AdmissionStormTests
{
    // Far above the few seconds these take on 2 busy cores; a lost wake-up must fail, not hang.
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TryGrant_RacingTokenAndTimer_ExactlyOneOutcomeWinsEachWait()
    {
        const int Rounds = 40;
        const int PerRound = 500;
        var time = new FakeTimeProvider();
        var pool = new WaiterPool(time, 1024);
        var waiters = new AdmissionWaiter[PerRound];
        var waits = new Task<WaitResult>[PerRound];
        var sources = new CancellationTokenSource[PerRound];
        var granted = new bool[PerRound];
        var totals = new int[3];
        var grants = 0;

        // Three racers per round, each over all the round's waiters in its own shuffled order:
        // the scheduler grants (and releases the queue's share), clients go away, time runs out.
        using var phase = new Barrier(4);
        var racers = new[]
        {
            Racer(phase, Rounds, PerRound, seed: 1, i =>
            {
                granted[i] = waiters[i].TryGrant();
                waiters[i].ReleaseFromQueue();
            }),
            Racer(phase, Rounds, PerRound, seed: 2, i => sources[i].Cancel()),
            Racer(phase, Rounds, PerRound, seed: 3, i =>
            {
                if (i == PerRound / 2)
                {
                    time.Advance(TimeSpan.FromSeconds(1));
                }
            }),
        };

        for (var round = 0; round < Rounds; round++)
        {
            for (var i = 0; i < PerRound; i++)
            {
                sources[i] = new CancellationTokenSource();
                waiters[i] = pool.Rent("acme", "interactive", 0, default);
                waits[i] = waiters[i].WaitAsync(TimeSpan.FromSeconds(1), sources[i].Token).AsTask();
            }

            Assert.True(phase.SignalAndWait(Limit), "the racers did not start");
            Assert.True(phase.SignalAndWait(Limit), "the racers did not finish");

            for (var i = 0; i < PerRound; i++)
            {
                var outcome = (await waits[i].WaitAsync(Limit)).Outcome;
                Assert.True(granted[i] == (outcome == AdmissionOutcome.Granted), $"round {round}, waiter {i}: TryGrant said {granted[i]}, the wait ended {outcome}");
                totals[(int)outcome]++;
                grants += granted[i] ? 1 : 0;
                sources[i].Dispose();
            }

            // Both shares released for every waiter: all are back, ready for the next round.
            Assert.Equal(PerRound, pool.Count);
        }

        await Task.WhenAll(racers).WaitAsync(Limit);

        Assert.Equal(Rounds * PerRound, totals.Sum());
        Assert.Equal(grants, totals[(int)AdmissionOutcome.Granted]);
    }

    [Fact]
    public async Task Scheduler_CancellationStorm_GrantsOnlyLiveWaitersAndLeavesNothingBehind()
    {
        const int Producers = 2;
        const int PerProducer = 4000;
        const int Total = Producers * PerProducer;
        var time = new FakeTimeProvider();
        var pool = new WaiterPool(time, 8192);
        var ring = new BoundedRing<AdmissionWaiter>(64);
        var outcomes = new int[Total];
        var outcomeCounts = new int[Total];
        var rejected = 0;
        var grantsIssued = 0;
        var tombstonesSkipped = 0;
        var producersLeft = Producers;
        var consumerDone = false;
        var created = new ConcurrentDictionary<AdmissionWaiter, byte>(ReferenceEqualityComparer.Instance);
        var toCancel = new ConcurrentQueue<CancellationTokenSource>();
        var requests = new ConcurrentBag<Task>();
        var clock = Stopwatch.StartNew();

        void Record(int index, int outcome)
        {
            outcomes[index] = outcome;
            Interlocked.Increment(ref outcomeCounts[index]);
        }

        // A quarter of the requests await: their continuation runs on the thread pool and
        // releases the request's share there, racing with the scheduler's release.
        async Task Request(int index, AdmissionWaiter waiter, TimeSpan timeout, CancellationToken token) =>
            Record(index, (int)(await waiter.WaitAsync(timeout, token)).Outcome);

        var threads = new List<Task>();
        for (var p = 0; p < Producers; p++)
        {
            var producer = p;
            threads.Add(TestThreads.Start(() =>
            {
                var random = new Random(producer);

                // The others are read by their producer as soon as they complete (as an await of
                // a completed ValueTask reads it), so their waiters go back to the pool during
                // the storm and later rents reuse them, with late timer fires still about. Up to
                // 48 in flight per producer, more than the ring holds: now and then it is full.
#pragma warning disable CA2012 // each ValueTask is read once, after IsCompleted, as await does
                var inFlight = new List<(int Index, ValueTask<WaitResult> Wait)>();
                void Reap()
                {
                    for (var i = inFlight.Count - 1; i >= 0; i--)
                    {
                        if (inFlight[i].Wait.IsCompleted)
                        {
                            Record(inFlight[i].Index, (int)inFlight[i].Wait.GetAwaiter().GetResult().Outcome);
                            inFlight.RemoveAt(i);
                        }
                    }
                }

                for (var n = 0; n < PerProducer && clock.Elapsed < Limit; n++)
                {
                    Reap();
                    while (inFlight.Count >= 48 && clock.Elapsed < Limit)
                    {
                        Thread.Yield();
                        Reap();
                    }

                    var index = (producer * PerProducer) + n;
                    var waiter = pool.Rent($"tenant-{producer}", "interactive", 0, default);
                    created.TryAdd(waiter, 0);
                    // Full: wait a little for the scheduler, as a burst does, then give up.
                    var enqueued = ring.TryEnqueue(waiter);
                    for (var tries = 0; !enqueued && tries < 20; tries++)
                    {
                        Thread.Yield();
                        enqueued = ring.TryEnqueue(waiter);
                    }

                    if (!enqueued)
                    {
                        waiter.Abandon();
                        Record(index, -1);
                        Interlocked.Increment(ref rejected);
                        continue;
                    }

                    // A third wait forever, a third have a client that may go away, a third time
                    // out after 1-5 ms of the manual clock.
                    var kind = random.Next(3);
                    var token = CancellationToken.None;
                    if (kind == 1)
                    {
                        var source = new CancellationTokenSource();
                        toCancel.Enqueue(source);
                        token = source.Token;
                    }

                    var timeout = kind == 2 ? TimeSpan.FromMilliseconds(random.Next(1, 6)) : Timeout.InfiniteTimeSpan;
                    if (n % 4 == 0)
                    {
                        requests.Add(Request(index, waiter, timeout, token));
                    }
                    else
                    {
                        inFlight.Add((index, waiter.WaitAsync(timeout, token)));
                    }
                }

                while (inFlight.Count > 0 && clock.Elapsed < Limit)
                {
                    Thread.Yield();
                    Reap();
                }
#pragma warning restore CA2012

                Interlocked.Decrement(ref producersLeft);
            }));
        }

        // The scheduler: every waiter it dequeues is granted if still pending and skipped if not.
        threads.Add(TestThreads.Start(() =>
        {
            while (clock.Elapsed < Limit)
            {
                if (ring.TryDequeue(out var waiter))
                {
                    // A little work per grant, so that waiters spend time in the queue and
                    // clients and the clock get at them there.
                    Thread.SpinWait(100);
                    if (waiter.TryGrant())
                    {
                        grantsIssued++;
                    }
                    else
                    {
                        tombstonesSkipped++;
                    }

                    waiter.ReleaseFromQueue();
                }
                else if (Volatile.Read(ref producersLeft) == 0 && ring.Count == 0)
                {
                    break;
                }
                else
                {
                    Thread.Yield();
                }
            }

            Volatile.Write(ref consumerDone, true);
        }));

        // Clients going away: about half of those that could.
        threads.Add(TestThreads.Start(() =>
        {
            var random = new Random(42);
            while (clock.Elapsed < Limit && !(Volatile.Read(ref consumerDone) && toCancel.IsEmpty))
            {
                if (toCancel.TryDequeue(out var source))
                {
                    if (random.Next(2) == 0)
                    {
                        source.Cancel();
                    }
                }
                else
                {
                    Thread.Sleep(1);
                }
            }
        }));

        // The clock: 1 ms at a time while the scheduler runs. The sleeps here and in the canceller
        // leave CPU to the thread pool, where finished waits release their waiters for reuse.
        threads.Add(TestThreads.Start(() =>
        {
            while (clock.Elapsed < Limit && !Volatile.Read(ref consumerDone))
            {
                time.Advance(TimeSpan.FromMilliseconds(1));
                Thread.Sleep(1);
            }
        }));

        await Task.WhenAll(threads).WaitAsync(Limit);
        await Task.WhenAll(requests).WaitAsync(Limit);

        Assert.All(outcomeCounts, count => Assert.Equal(1, count));
        var granted = outcomes.Count(o => o == (int)AdmissionOutcome.Granted);
        var timedOut = outcomes.Count(o => o == (int)AdmissionOutcome.TimedOut);
        var cancelled = outcomes.Count(o => o == (int)AdmissionOutcome.Cancelled);
        Assert.Equal(Total, granted + timedOut + cancelled + rejected);
        Assert.Equal(grantsIssued, granted);
        Assert.Equal(timedOut + cancelled, tombstonesSkipped);
        Assert.False(ring.TryDequeue(out _));
        Assert.Equal(0, ring.Count);
        // Every waiter was released by both its owners (or abandoned) and is back in the pool.
        Assert.Equal(created.Count, pool.Count);
    }

    private static Task Racer(Barrier phase, int rounds, int count, int seed, Action<int> act) =>
        TestThreads.Start(() =>
        {
            var random = new Random(seed);
            var order = Enumerable.Range(0, count).ToArray();
            for (var round = 0; round < rounds; round++)
            {
                random.Shuffle(order);
                phase.SignalAndWait();
                foreach (var i in order)
                {
                    act(i);
                }

                phase.SignalAndWait();
            }
        });
}
