namespace AotProxy.Simulator.Tests;

// The manual clock the engine tests step (tests/Shared/TimerClock.cs): it moves only to a timer
// the code armed, and a timer it saw armed fires there, whichever thread armed it.
public sealed class TimerClockTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromMilliseconds(10);

    // Two loops each await 1 ms of the clock 500 times, each wait armed on a thread-pool thread
    // while the test steps the clock through a 1 ms periodic timer of other code: a clock that kept
    // the due times apart from its timers saw a wait armed before the timer counted it, stepped
    // there, and then stepped by zero until the bound (the simulator tests' stall in CI).
    [Fact]
    public async Task StepUntilAsync_TimersArmedOnOtherThreadsWhileItSteps_EachFiresAndNoneEarly()
    {
        var clock = new TimerClock();
        var wait = TimeSpan.FromMilliseconds(1); // Task.Delay's least
        using var other = clock.CreateTimer(_ => { }, null, wait, wait);
        var done = 0;
        var early = 0;
        var loops = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 500; i++)
            {
                await Task.Yield(); // the next wait is armed on the pool, not inline in the test's step
                var armed = clock.GetUtcNow();
                await Task.Delay(wait, clock);
                if (clock.GetUtcNow() - armed < wait)
                {
                    Interlocked.Increment(ref early);
                }
            }

            Interlocked.Increment(ref done);
        })).ToArray();

        Assert.True(await clock.StepUntilAsync(() => Volatile.Read(ref done) == loops.Length), $"{done} of {loops.Length} loops ended");
        await Task.WhenAll(loops);
        Assert.Equal(0, early);
    }

    // Three timers armed out of order: it steps to the first, then the second, and stops there,
    // the condition holding; the third is still armed.
    [Fact]
    public async Task StepUntilAsync_StepsToEachDueInTurn_AndNoFurtherThanTheCondition()
    {
        var clock = new TimerClock();
        var start = clock.GetUtcNow();
        var fired = new List<TimeSpan>();
        using var third = clock.CreateTimer(_ => fired.Add(clock.GetUtcNow() - start), null, 3 * Wait, Timeout.InfiniteTimeSpan);
        using var first = clock.CreateTimer(_ => fired.Add(clock.GetUtcNow() - start), null, Wait, Timeout.InfiniteTimeSpan);
        using var second = clock.CreateTimer(_ => fired.Add(clock.GetUtcNow() - start), null, 2 * Wait, Timeout.InfiniteTimeSpan);

        Assert.True(await clock.StepUntilAsync(() => fired.Count == 2));

        Assert.Equal([Wait, 2 * Wait], fired);
        Assert.Equal(2 * Wait, clock.GetUtcNow() - start);
    }

    // A periodic timer and a one-shot between its ticks, a disposed and a disarmed timer due before
    // both: Advance fires what is armed, in order, the clock at each one's due.
    [Fact]
    public void Advance_FiresTheArmedTimersInOrder_EachAtItsDue_APeriodicOneAgainFromItsDue()
    {
        var clock = new TimerClock();
        var start = clock.GetUtcNow();
        var fired = new List<(string Name, TimeSpan At)>();
        TimerCallback Record(string name) => _ => fired.Add((name, clock.GetUtcNow() - start));
        var disposed = clock.CreateTimer(Record("disposed"), null, Wait / 2, Timeout.InfiniteTimeSpan);
        using var disarmed = clock.CreateTimer(Record("disarmed"), null, Wait / 2, Timeout.InfiniteTimeSpan);
        using var periodic = clock.CreateTimer(Record("periodic"), null, Wait, Wait);
        using var once = clock.CreateTimer(Record("once"), null, 2.5 * Wait, Timeout.InfiniteTimeSpan);
        disposed.Dispose();
        Assert.True(disarmed.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan));

        clock.Advance(4 * Wait);

        Assert.Equal([("periodic", Wait), ("periodic", 2 * Wait), ("once", 2.5 * Wait), ("periodic", 3 * Wait), ("periodic", 4 * Wait)], fired);
        Assert.Equal(4 * Wait, clock.GetUtcNow() - start);
        Assert.False(disposed.Change(Wait, Timeout.InfiniteTimeSpan));
    }

    // The engine's loop in small: each wait armed as the last one fired. Three steps leave three
    // waits done and the fourth armed, the clock at the third's end.
    [Fact]
    public async Task StepsAsync_RunsThatManyWaits_AndParksTheCodeOnTheNext()
    {
        var clock = new TimerClock();
        var start = clock.GetUtcNow();
        var waits = 0;
        using var stop = new CancellationTokenSource();
        var loop = Task.Run(async () =>
        {
            while (true)
            {
                await Task.Delay(Wait, clock, stop.Token);
                Interlocked.Increment(ref waits);
            }
        });

        await clock.StepsAsync(3);

        Assert.Equal(3, Volatile.Read(ref waits));
        Assert.Equal(3 * Wait, clock.GetUtcNow() - start);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
    }
}
