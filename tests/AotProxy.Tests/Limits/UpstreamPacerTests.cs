using AotProxy.Configuration;
using AotProxy.Limits;
using AotProxy.Routing;

namespace AotProxy.Tests.Limits;

// The pacer on a manual clock: its timer fires exactly when the test advances time past it.
public sealed class UpstreamPacerTests
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private readonly FakeTimeProvider _clock = new();

    // rpm 62, margin 2: 60 per minute, one per second.
    private static PacingModel OnePerSecond(TimeSpan? maxWait = null) => new(62, 0, 2, maxWait ?? TimeSpan.FromSeconds(30));

    [Fact]
    public void WaitAsync_SecondRequestAtOnce_WaitsExactlyTheSpacing()
    {
        var pacer = new UpstreamPacer(OnePerSecond(), _clock);

        var first = Wait(pacer, 10);
        var second = Wait(pacer, 10);

        Assert.True(first.IsCompletedSuccessfully);
        Assert.Equal(PacingOutcome.Granted, Completed(first).Outcome);
        Assert.False(second.IsCompleted);
        _clock.Advance(TimeSpan.FromSeconds(1) - Ms);
        Assert.False(second.IsCompleted);
        _clock.Advance(Ms);
        var granted = Completed(second);
        Assert.Equal(PacingOutcome.Granted, granted.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(1), granted.Waited);
        Assert.Equal(2, pacer.Granted);
        Assert.Equal(1, pacer.Waits);
        Assert.Equal(TimeSpan.FromSeconds(1), pacer.WaitTime);
    }

    // The load of the functional PacingTests on a clock that stops at each of the pacer's timers
    // (TimerClock): rpm 120, margin 2 (118 a minute, one per 508.47 ms), offered three times that
    // for two minutes, max_wait 3 s. Every grant comes at its turn, the spacing after the last one
    // or the start 118 back leaving the window, to the timer's millisecond (the pacer rounds its
    // delay up to one); so each of the two minutes lets exactly 118 go, no 60 s more, and a
    // request that gets no turn is refused at its max_wait.
    [Fact]
    public void WaitAsync_ThreeTimesTheRateForTwoMinutes_LetsTheLimitGoEachMinute_EachAtItsTurn()
    {
        var clock = new TimerClock();
        var limits = new PacingModel(120, 0, 2, TimeSpan.FromSeconds(3));
        var pacer = new UpstreamPacer(limits, clock);
        var start = clock.GetUtcNow();
        var interval = TimeSpan.FromSeconds(60.0 / (3 * limits.Rpm));
        var offered = new List<(TimeSpan Arrived, Task<PacingResult> Result)>();
        for (var arrival = TimeSpan.Zero; arrival < TimeSpan.FromMinutes(2); arrival += interval)
        {
            clock.Advance(start + arrival - clock.GetUtcNow()); // the pacer's timer fires on the way, at each due
            offered.Add((arrival, Wait(pacer, 1)));
        }

        clock.Advance(limits.MaxWait + Ms); // the last ones get their turn or their refusal

        var results = offered.Select(o => (o.Arrived, Result: Completed(o.Result))).ToArray();
        var grants = results.Where(r => r.Result.Outcome == PacingOutcome.Granted).Select(r => r.Arrived + r.Result.Waited).ToArray();
        var refused = results.Where(r => r.Result.Outcome == PacingOutcome.TimedOut).ToArray();
        Assert.Equal(results.Length, grants.Length + refused.Length);
        Assert.Equal(grants.Order(), grants); // first come, first served
        var limit = (int)limits.RequestLimit;
        for (var k = 1; k < grants.Length; k++)
        {
            var turn = grants[k - 1] + limits.Spacing;
            if (k >= limit)
            {
                turn = TimeSpan.FromTicks(Math.Max(turn.Ticks, (grants[k - limit] + PacingModel.Window).Ticks));
            }

            Assert.True(grants[k] >= turn && grants[k] < turn + Ms, $"grant {k} at {grants[k]}, its turn at {turn}");
        }

        for (var minute = 0; minute < 2; minute++)
        {
            Assert.Equal(limit, grants.Count(g => g >= TimeSpan.FromMinutes(minute) && g < TimeSpan.FromMinutes(minute + 1)));
        }

        Assert.Equal(limit, grants.Max(g => grants.Count(h => h >= g && h < g + PacingModel.Window)));
        Assert.NotEmpty(refused);
        Assert.All(refused, r => Assert.InRange(r.Result.Waited, limits.MaxWait, limits.MaxWait + Ms - TimeSpan.FromTicks(1)));
        Assert.Equal((grants.Length, refused.Length, 0), (pacer.Granted, pacer.Timeouts, pacer.Waiting));
    }

    [Fact]
    public void WaitAsync_AfterAQuietSpell_GoesAtOnce()
    {
        var pacer = new UpstreamPacer(OnePerSecond(), _clock);
        Assert.True(Wait(pacer, 1).IsCompletedSuccessfully);

        _clock.Advance(TimeSpan.FromMilliseconds(700));
        var early = Wait(pacer, 1);
        _clock.Advance(TimeSpan.FromMilliseconds(300));
        Assert.Equal(TimeSpan.FromMilliseconds(300), Completed(early).Waited);
        _clock.Advance(TimeSpan.FromSeconds(5));
        var late = Wait(pacer, 1);

        Assert.True(late.IsCompletedSuccessfully);
        Assert.Equal(TimeSpan.Zero, Completed(late).Waited);
        Assert.Equal(1, pacer.Waits);
    }

    [Fact]
    public void WaitAsync_Queue_GoesFirstComeFirstServedOnePerSpacing()
    {
        var pacer = new UpstreamPacer(OnePerSecond(), _clock);
        Wait(pacer, 1);
        var waiting = Enumerable.Range(0, 5).Select(_ => Wait(pacer, 1)).ToArray();

        for (var i = 0; i < waiting.Length; i++)
        {
            Assert.All(waiting, (w, k) => Assert.Equal(k < i, w.IsCompleted));
            _clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.All(waiting, (w, k) => Assert.Equal(TimeSpan.FromSeconds(k + 1), Completed(w).Waited));
        Assert.Equal(0, pacer.Waiting);
    }

    [Fact]
    public void WaitAsync_TokenWindowFull_WaitsUntilTheOldestStartIsSixtySecondsOld()
    {
        // tpm only, margin 0: 1,000 tokens in any 60 s, no spacing.
        var pacer = new UpstreamPacer(new PacingModel(0, 1000, 0, TimeSpan.FromMinutes(2)), _clock);
        Assert.True(Wait(pacer, 600).IsCompletedSuccessfully);
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.True(Wait(pacer, 300).IsCompletedSuccessfully);

        var third = Wait(pacer, 200);
        var fourth = Wait(pacer, 50); // would fit, but queues behind the third

        Assert.Equal((2, 900L), pacer.WindowUsage());
        Assert.False(third.IsCompleted);
        Assert.False(fourth.IsCompleted);
        _clock.Advance(TimeSpan.FromSeconds(50) - Ms);
        Assert.False(third.IsCompleted);
        _clock.Advance(Ms);
        Assert.Equal(TimeSpan.FromSeconds(50), Completed(third).Waited);
        Assert.Equal(TimeSpan.FromSeconds(50), Completed(fourth).Waited);
        Assert.Equal((3, 550L), pacer.WindowUsage());
    }

    [Fact]
    public void WaitAsync_ReservationLargerThanTheTokenLimit_GoesAloneOnceTheWindowIsEmpty()
    {
        var pacer = new UpstreamPacer(new PacingModel(0, 1000, 0, TimeSpan.FromMinutes(2)), _clock);
        Wait(pacer, 10);

        var huge = Wait(pacer, 5000);
        _clock.Advance(TimeSpan.FromSeconds(60) - Ms);
        Assert.False(huge.IsCompleted);
        _clock.Advance(Ms);

        Assert.Equal(PacingOutcome.Granted, Completed(huge).Outcome);
        Assert.False(Wait(pacer, 1).IsCompleted);
    }

    [Fact]
    public void WaitAsync_NoTurnWithinMaxWait_TimesOutWithRetryAfter()
    {
        var pacer = new UpstreamPacer(new PacingModel(12, 0, 2, TimeSpan.FromSeconds(2)), _clock); // one per 6 s
        Wait(pacer, 1);

        var second = Wait(pacer, 1);
        _clock.Advance(TimeSpan.FromSeconds(2) - Ms);
        Assert.False(second.IsCompleted);
        _clock.Advance(Ms);

        var result = Completed(second);
        Assert.Equal(PacingOutcome.TimedOut, result.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(2), result.Waited);
        Assert.Equal(4, result.RetryAfterSeconds); // the turn comes 4 s later
        Assert.Equal(1, pacer.Timeouts);
        Assert.Equal(1, pacer.Granted);
        Assert.Equal(0, pacer.Waiting);
    }

    [Fact]
    public void WaitAsync_TimedOutRequest_TakesNoPlaceInTheWindow()
    {
        var pacer = new UpstreamPacer(new PacingModel(12, 0, 2, TimeSpan.FromSeconds(2)), _clock);
        Wait(pacer, 1);
        var timedOut = Wait(pacer, 1);
        _clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(PacingOutcome.TimedOut, Completed(timedOut).Outcome);
        _clock.Advance(TimeSpan.FromSeconds(4));

        Assert.True(Wait(pacer, 1).IsCompletedSuccessfully);
        Assert.Equal((2, 2L), pacer.WindowUsage());
    }

    [Fact]
    public void WaitAsync_CancelledWaiter_FreesItsPlaceForTheNext()
    {
        var pacer = new UpstreamPacer(OnePerSecond(), _clock);
        Wait(pacer, 1);
        using var abort = new CancellationTokenSource();
        var second = Wait(pacer, 1, abort.Token);
        var third = Wait(pacer, 1);

        abort.Cancel();

        Assert.Equal(PacingOutcome.Cancelled, Completed(second).Outcome);
        Assert.Equal(1, pacer.Waiting);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromSeconds(1), Completed(third).Waited); // the second's turn, not 2 s
        Assert.Equal(2, pacer.Granted);
    }

    [Fact]
    public void WaitAsync_AlreadyCancelled_DoesNotQueue()
    {
        var pacer = new UpstreamPacer(OnePerSecond(), _clock);
        Wait(pacer, 1);

        var result = Wait(pacer, 1, new CancellationToken(canceled: true));

        Assert.Equal(PacingOutcome.Cancelled, Completed(result).Outcome);
        Assert.Equal(0, pacer.Waiting);
        Assert.Equal(0, pacer.Waits);
    }

    [Fact]
    public void Update_LowerRpm_KeepsTheWindowAndAppliesTheNewLimit()
    {
        // 600 per minute (one per 100 ms), then a reload lowers it to 10 per minute.
        var pacer = new UpstreamPacer(new PacingModel(602, 0, 2, TimeSpan.FromMinutes(2)), _clock);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(Wait(pacer, 1).IsCompletedSuccessfully, $"start {i}");
            _clock.Advance(TimeSpan.FromMilliseconds(100));
        }

        pacer.Update(new PacingModel(12, 0, 2, TimeSpan.FromMinutes(2)));
        var next = Wait(pacer, 1);

        _clock.Advance(TimeSpan.FromSeconds(59) - Ms); // t = 60 s - 1 ms: ten starts still in the window
        Assert.False(next.IsCompleted);
        _clock.Advance(Ms);
        Assert.Equal(PacingOutcome.Granted, Completed(next).Outcome);
    }

    [Fact]
    public void Update_HigherRpm_LetsWaitersGoAtOnce()
    {
        var pacer = new UpstreamPacer(new PacingModel(12, 0, 2, TimeSpan.FromMinutes(1)), _clock);
        Wait(pacer, 1);
        var second = Wait(pacer, 1);
        _clock.Advance(TimeSpan.FromSeconds(1));

        pacer.Update(new PacingModel(62, 0, 2, TimeSpan.FromMinutes(1)));

        Assert.Equal(TimeSpan.FromSeconds(1), Completed(second).Waited);
    }

    [Fact]
    public void WorkerStateUpdate_LimitsRemoved_ReleasesWaitersAndStopsPacing()
    {
        var paced = Worker(OnePerSecond());
        var state = new WorkerState(paced, _clock);
        var pacer = state.Pacer!;
        Wait(pacer, 1);
        var waiting = Wait(pacer, 1);

        state.Update(paced with { Pacing = null });

        Assert.Null(state.Pacer);
        Assert.Equal(PacingOutcome.Granted, Completed(waiting).Outcome);
    }

    [Fact]
    public void WorkerStateUpdate_LimitsChanged_KeepsThePacerAndItsCounters()
    {
        var paced = Worker(OnePerSecond());
        var state = new WorkerState(paced, _clock);
        var pacer = state.Pacer!;
        Wait(pacer, 1);

        state.Update(paced with { Pacing = new PacingModel(122, 0, 2, TimeSpan.FromSeconds(5)) });

        Assert.Same(pacer, state.Pacer);
        Assert.Equal(120, pacer.Limits.RequestLimit);
        Assert.Equal(1, pacer.Granted);
        Assert.Null(new WorkerState(paced with { Pacing = null }, _clock).Pacer);
    }

    private static WorkerModel Worker(PacingModel pacing) =>
        new("w", new Uri("http://127.0.0.1:1/"), ["m"], 32, 1, "", pacing);

    private static Task<PacingResult> Wait(UpstreamPacer pacer, long tokens, CancellationToken ct = default) =>
        pacer.WaitAsync(tokens, ct).AsTask();

    private static PacingResult Completed(Task<PacingResult> pending)
    {
        Assert.True(pending.IsCompleted, "expected the pacer to have answered");
        return pending.GetAwaiter().GetResult();
    }
}
