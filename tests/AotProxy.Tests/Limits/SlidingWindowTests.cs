using System.Collections.Concurrent;
using AotProxy.Limits;
using AotProxy.Tests.Admission;

namespace AotProxy.Tests.Limits;

// The sliding minute on a manual clock: no 60 s interval ever holds more than the limit.
public class SlidingWindowTests
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void TryTake_TheLimitInOneSecond_StaysRefusedUntilThatSecondLeavesTheWindow()
    {
        var window = new SlidingWindow(60, _clock);
        for (var i = 0; i < 60; i++)
        {
            Assert.True(Take(window, 1), $"take {i + 1} of 60");
        }

        Assert.False(Take(window, 1));
        _clock.Advance(TimeSpan.FromSeconds(60));
        Assert.False(Take(window, 1)); // a token bucket would have refilled completely by now
        Assert.Equal(TimeSpan.FromSeconds(1), window.TimeUntil(1));

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(60, window.Remaining);
        Assert.True(Take(window, 60));
    }

    [Fact]
    public void Takes_SpreadOverTheMinute_LeaveTheWindowBinByBin()
    {
        var window = new SlidingWindow(60, _clock);
        Assert.True(Take(window, 30));
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.True(Take(window, 30));
        Assert.False(Take(window, 1));
        Assert.Equal(TimeSpan.FromSeconds(31), window.TimeUntil(1));  // the first 30 leave at 61 s
        Assert.Equal(TimeSpan.FromSeconds(61), window.TimeUntil(31)); // the rest at 91 s
        Assert.Equal(TimeSpan.FromSeconds(61), window.TimeUntilEmpty());

        _clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(30, window.Remaining);
        Assert.False(Take(window, 31));
        Assert.True(Take(window, 30));
    }

    [Fact]
    public void Takes_AtRandomMoments_NeverPutMoreThanTheLimitInAny60Seconds_AndUseMostOfIt()
    {
        const long limit = 100;
        var window = new SlidingWindow(limit, _clock);
        var random = new Random(42);
        var taken = new List<(long At, long N)>();

        // 10 minutes of demand at about 3x the limit, in bursts and trickles.
        var end = _clock.GetTimestamp() + (long)(TimeSpan.FromMinutes(10).TotalSeconds * _clock.TimestampFrequency);
        while (_clock.GetTimestamp() < end)
        {
            var n = random.Next(1, 6);
            var now = _clock.GetTimestamp();
            if (window.TryTake(n, now, out _))
            {
                taken.Add((now, n));
            }

            _clock.Advance(TimeSpan.FromMilliseconds(random.Next(0, 40)));
        }

        var worst = WorstMinute(taken);
        Assert.True(worst <= limit, $"a 60 s interval held {worst} of {limit}");
        // The window's 1 s bins cost at most a 61st of the minute: a tenant gets ~60/61 of its limit.
        var total = taken.Sum(t => t.N);
        Assert.True(total >= limit * 10 * 55 / 61, $"only {total} taken in 10 minutes of {limit}/min");
    }

    [Fact]
    public void GiveBack_InTheSameSecond_FreesAtOnce_AndAnOlderSecondFromTheNext()
    {
        var window = new SlidingWindow(10, _clock);
        var first = _clock.GetTimestamp();
        Assert.True(window.TryTake(10, first, out var firstSecond));
        window.GiveBack(4, firstSecond);
        Assert.Equal(4, window.Remaining);

        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.True(Take(window, 4)); // seals the bin of the first second into the cached sum
        window.GiveBack(6, firstSecond);
        Assert.Equal(0, window.Remaining); // the cached sum still holds it for this second

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(6, window.Remaining);
    }

    [Fact]
    public void GiveBack_OfABinThatLeftTheWindow_ChangesNothing()
    {
        var window = new SlidingWindow(10, _clock);
        Assert.True(window.TryTake(10, _clock.GetTimestamp(), out var second));
        _clock.Advance(TimeSpan.FromSeconds(70));
        Assert.True(Take(window, 10));

        window.GiveBack(10, second);

        Assert.Equal(0, window.Remaining);
    }

    [Fact]
    public void Charge_BeyondTheLimit_IsOwedUntilItLeavesTheWindow()
    {
        var window = new SlidingWindow(100, _clock);
        Assert.True(Take(window, 80));
        window.Charge(50);

        Assert.Equal(0, window.Remaining);
        Assert.Equal(100, window.Used);
        _clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(100, window.Remaining);
    }

    [Fact]
    public void TryTake_MoreThanTheLimit_NeverFits()
    {
        var window = new SlidingWindow(10, _clock);

        Assert.False(Take(window, 11));
        Assert.Equal(10, window.Remaining);
    }

    [Fact]
    public void Limit_ChangedByAReload_KeepsWhatTheWindowHolds()
    {
        var window = new SlidingWindow(10, _clock);
        Assert.True(Take(window, 8));

        window.Limit = 20;

        Assert.Equal(12, window.Remaining);
        Assert.False(Take(window, 13));
        Assert.True(Take(window, 12));
    }

    [Fact]
    public void Seconds_AcrossTheTagWrap_KeepTheWindow()
    {
        // Bins tag their second modulo 2^32 (136 years); a window straddling the wrap still counts.
        _clock.Advance(TimeSpan.FromSeconds((1L << 32) - 30));
        var window = new SlidingWindow(10, _clock);
        Assert.True(Take(window, 10));

        _clock.Advance(TimeSpan.FromSeconds(45)); // past the wrap, 45 s after the take
        Assert.False(Take(window, 1));
        Assert.Equal(TimeSpan.FromSeconds(16), window.TimeUntil(1));

        _clock.Advance(TimeSpan.FromSeconds(16));
        Assert.True(Take(window, 10));
    }

    [Fact]
    public async Task TryTake_ManyThreadsOnAFrozenClock_ExactlyTheLimitSucceeds()
    {
        const int threads = 8;
        const long limit = 50_000;
        var window = new SlidingWindow(limit, _clock);
        var taken = new long[threads];
        using var start = new Barrier(threads);

        await Task.WhenAll(Enumerable.Range(0, threads).Select(t => TestThreads.Start(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 20_000; i++)
            {
                if (Take(window, 1))
                {
                    taken[t]++;
                }
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(limit, taken.Sum());
        Assert.Equal(0, window.Remaining);
    }

    [Fact]
    public async Task TryTake_ManyThreadsWhileTheClockCrossesSeconds_NeverExceedsTheLimitInAnyMinute()
    {
        // Takers race each other and the clock: each second's first taker seals the bins before
        // it, while others may still aim at the second that just ended.
        const int threads = 6;
        const long limit = 500;
        var window = new SlidingWindow(limit, _clock);
        var taken = new ConcurrentQueue<(long At, long N)>();
        var stop = 0;
        using var start = new Barrier(threads + 1);

        var takers = Enumerable.Range(0, threads).Select(t => TestThreads.Start(() =>
        {
            var random = new Random(t);
            start.SignalAndWait();
            while (Volatile.Read(ref stop) == 0)
            {
                var n = random.Next(1, 4);
                var now = _clock.GetTimestamp();
                if (window.TryTake(n, now, out var second))
                {
                    // The bin the take went to: the second it counts in.
                    taken.Enqueue((second * TimeSpan.TicksPerSecond, n));
                }
            }
        })).ToList();
        var ticker = TestThreads.Start(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 3_000; i++) // 5 minutes in 100 ms steps
            {
                _clock.Advance(TimeSpan.FromMilliseconds(100));
                Thread.SpinWait(2_000);
            }

            Volatile.Write(ref stop, 1);
        });
        await Task.WhenAll([.. takers, ticker]).WaitAsync(TimeSpan.FromSeconds(120));

        var worst = WorstMinute([.. taken]);
        Assert.True(worst <= limit, $"a 60 s interval held {worst} of {limit}");
        Assert.True(taken.Sum(t => t.N) >= limit * 4, "the takers hardly got anything: the test proves nothing");
    }

    private bool Take(SlidingWindow window, long n) => window.TryTake(n, _clock.GetTimestamp(), out _);

    // The most taken in any interval [t, t + 60 s) that starts at a take.
    private static long WorstMinute(IReadOnlyList<(long At, long N)> taken)
    {
        var sorted = taken.OrderBy(t => t.At).ToArray();
        long worst = 0, sum = 0;
        var end = 0;
        for (var i = 0; i < sorted.Length; i++)
        {
            while (end < sorted.Length && sorted[end].At < sorted[i].At + TimeSpan.FromSeconds(60).Ticks)
            {
                sum += sorted[end++].N;
            }

            worst = Math.Max(worst, sum);
            sum -= sorted[i].N;
        }

        return worst;
    }
}
