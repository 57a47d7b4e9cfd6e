using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Tests.Admission;

// Per-class protection on a manual clock with made-up attempts: a 10 s window of ten 1 s buckets,
// enterprise (1%, 2x) protected, premium (5%, 5x) and free (20%, 10x) shed loosest first.
public sealed class ClassProtectionTests
{
    private static readonly ClassModel Enterprise = AdmissionHarness.Class("enterprise", priority: 0) with { MaxErrorRate = 0.01, TtftTolerance = 2.0 };
    private static readonly ClassModel Premium = AdmissionHarness.Class("premium", priority: 1) with { MaxErrorRate = 0.05, TtftTolerance = 5.0 };
    private static readonly ClassModel Free = AdmissionHarness.Class("free", priority: 2) with { MaxErrorRate = 0.2, TtftTolerance = 10.0 };

    private readonly FakeTimeProvider _time = new();

    private static ProtectionModel Model(int minSamples = 10, params ClassModel[] classes) =>
        new ProtectionModel(TimeSpan.FromSeconds(10), minSamples, []).For(classes.Length == 0 ? [Enterprise, Premium, Free] : [.. classes]);

    [Fact]
    public void ErrorRate_PastTheStrictestTolerance_ShedsTheLoosestFirst_TheNextASliceLaterIfStillPast_NeverTheStrictest()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 10, attempts: 100, failed: 0);
        Assert.Equal(0, protection.State.Shed);

        Seconds(protection, 1, attempts: 100, failed: 10); // the window: 10 of 1,000 = 1%, not past 1%
        Assert.Equal(0, protection.State.Shed);
        Seconds(protection, 1, attempts: 100, failed: 10); // 20 of 1,000
        Assert.Equal(["free"], Shed(protection));
        var reason = protection.State.Reason!;
        Assert.Equal(("enterprise", ShedReason.ErrorRateKey, 0.01, 0.02), (reason.ProtectedClass, reason.Key, reason.Limit, reason.Measured));

        // Still past it on what came after free was shed: premium a slice later.
        Seconds(protection, 1, attempts: 100, failed: 10);
        Assert.Equal(["free", "premium"], Shed(protection));

        Seconds(protection, 50, attempts: 100, failed: 50);
        Assert.Equal(["free", "premium"], Shed(protection));
        Assert.False(protection.Sheds("enterprise", out _, out _));
        Assert.True(protection.Sheds("premium", out _, out _));
    }

    [Fact]
    public void Recovery_NeedsAWholeWindowBelowPointEightOfTheTolerance_ThenOneClassPerWindow()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 20, attempts: 1000, failed: 30); // 3%: free, then a slice later premium
        Assert.Equal(["free", "premium"], Shed(protection));

        // 0.9%: below enterprise's 1%, above 0.8%: nothing moves, for three windows.
        Seconds(protection, 30, attempts: 1000, failed: 9);
        Assert.Equal(["free", "premium"], Shed(protection));

        // No errors: the window is below 0.8% from its second bucket on (0.72%); a whole window
        // later premium (the last shed) comes back, a window after that free.
        Seconds(protection, 11, attempts: 1000);
        Assert.Equal(["free", "premium"], Shed(protection));
        Seconds(protection, 1, attempts: 1000);
        Assert.Equal(["free"], Shed(protection));
        Seconds(protection, 9, attempts: 1000);
        Assert.Equal(["free"], Shed(protection));
        Seconds(protection, 1, attempts: 1000);
        Assert.Empty(Shed(protection));
        Assert.Null(protection.State.Reason);
    }

    [Fact]
    public void Ttft_PastATolerance_Sheds_AndTheBaselineIsFrozenWhileShedding()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 30, attempts: 20, ttft: 0.100); // the baseline's first window, and its warm-up
        Assert.Equal(0.100, protection.BaselineSeconds, 6);

        // 1.5x for a long while, nothing shed: the baseline learns it, slowly.
        Seconds(protection, 30, attempts: 20, ttft: 0.150);
        Assert.Empty(Shed(protection));
        var learned = protection.BaselineSeconds;
        Assert.InRange(learned, 0.110, 0.140);

        // 6x: free is shed at the next judgement (the newest slices' mean passes 2x), and from then on the baseline stays.
        Seconds(protection, 1, attempts: 20, ttft: 6 * learned);
        Assert.Equal(["free"], Shed(protection));
        Assert.Equal(ShedReason.TtftKey, protection.State.Reason!.Key);
        var frozen = protection.BaselineSeconds;
        Seconds(protection, 60, attempts: 20, ttft: 6 * learned);
        Assert.Equal(["free", "premium"], Shed(protection));
        Assert.Equal(frozen, protection.BaselineSeconds);
        Assert.Equal(6 * learned / frozen, protection.State.TtftRatio, 3);

        // Healthy again: both come back, and then the baseline moves again.
        Seconds(protection, 40, attempts: 20, ttft: learned);
        Assert.Empty(Shed(protection));
        var back = protection.BaselineSeconds;
        Seconds(protection, 10, attempts: 20, ttft: 1.5 * learned);
        Assert.True(protection.BaselineSeconds > back, $"{protection.BaselineSeconds} > {back}");
    }

    [Fact]
    public void Ttft_ASlowdownShedsWithinASlice_ThoughTheWindowsMeanIsStillUnderTheTolerance()
    {
        // One slice at 4x: the window's mean is 1.3x, the newest two slices' 2.5x.
        var protection = OneSliceAtFourTimesTheBaseline();
        Assert.Equal(["free"], Shed(protection));
        Assert.Equal(2.5, protection.State.TtftRatio, 3);
        Assert.Equal(("enterprise", ShedReason.TtftKey), (protection.State.Reason!.ProtectedClass, protection.State.Reason.Key));
    }

    [Fact]
    public void Ttft_TheNextClassIsShedASliceLater_OnlyWhenWhatFollowedTheShedIsStillPast()
    {
        var protection = OneSliceAtFourTimesTheBaseline();
        Assert.Equal(["free"], Shed(protection));

        // Back to normal after free was shed: premium stays (the window, 4x slice and all, is at 1.3x).
        Seconds(protection, 3, attempts: 20, ttft: 0.100);
        Assert.Equal(["free"], Shed(protection));

        // Slow again: past 2x on what came after the shed, so premium a slice later.
        Seconds(protection, 1, attempts: 20, ttft: 0.500);
        Assert.Equal(["free", "premium"], Shed(protection));
    }

    [Fact]
    public void Ttft_AWaiterOfAServedClassOlderThanItsTolerance_ShedsBeforeAnySlowFirstToken()
    {
        var oldest = new Dictionary<string, double> { ["enterprise"] = 0, ["premium"] = 0, ["free"] = 0 };
        var protection = new ClassProtection(_time, Model(), (name, _) => (long)(oldest[name] * _time.TimestampFrequency));
        Seconds(protection, 10, attempts: 20, ttft: 0.100);

        // Free waits 0.9 s (9x, under its 10x) and enterprise 0.19 s (1.9x): nothing.
        (oldest["free"], oldest["enterprise"]) = (0.9, 0.19);
        Seconds(protection, 1, attempts: 20, ttft: 0.100);
        Assert.Empty(Shed(protection));

        // Enterprise's oldest waiter passes 2x the baseline: free is shed at the next judgement.
        oldest["enterprise"] = 0.25;
        Seconds(protection, 1, attempts: 20, ttft: 0.100);
        Assert.Equal(["free"], Shed(protection));
        Assert.Equal(("enterprise", 2.5), (protection.State.Reason!.ProtectedClass, protection.State.Reason.Measured));

        // Still waiting a slice later: premium too. A waiter keeps its classes shed until it is served.
        Seconds(protection, 1, attempts: 20, ttft: 0.100);
        Assert.Equal(["free", "premium"], Shed(protection));
        oldest["enterprise"] = 0;
        Seconds(protection, 11, attempts: 20, ttft: 0.100);
        Assert.Equal(["free"], Shed(protection));
    }

    // An admitted stream still without its first token is a first token at least its age late: the
    // newest slices' mean counts it so. One stream of enterprise's at 2.5x its baseline among first
    // tokens at 1x is its normal tail, and sheds nothing (alone against 2x it shed free in the
    // healthy phase at the full point); ten at 3x, with two first tokens, the fleet holding them, do.
    [Fact]
    public void Ttft_AdmittedStreamsWithoutTheirFirstToken_CountByTheirAge_OneInTheTailShedsNothing_ManyLateDo()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 10, attempts: 20, ttft: 0.100);
        var pending = protection.Pending("enterprise")!;

        Seconds(protection, 1, attempts: 20, ttft: 0.100, advance: false);
        var slot = pending.Add(At(1 - 0.25));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(Shed(protection));
        pending.Remove(slot);

        Seconds(protection, 1, attempts: 1, ttft: 0.100);
        Seconds(protection, 1, attempts: 1, ttft: 0.100, advance: false);
        var slots = Enumerable.Range(0, 10).Select(_ => pending.Add(At(1 - 0.3))).ToArray();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["free"], Shed(protection));
        // The measured ratio: the oldest of them (the tail rule), past the pooled mean's 2.667.
        Assert.Equal(("enterprise", ShedReason.TtftKey, 3.0), (protection.State.Reason!.ProtectedClass, protection.State.Reason.Key, Math.Round(protection.State.Reason.Measured, 3)));

        // A shed class comes back only when no stream is late: their first tokens came.
        foreach (var taken in slots)
        {
            pending.Remove(taken);
        }

        Seconds(protection, 11, attempts: 20, ttft: 0.100);
        Assert.Empty(Shed(protection));
    }

    // The tail rule: several of a served class's admitted streams late at once (at least 3, and at
    // least a quarter of those awaiting a first token, past tolerance x baseline) pass its TTFT
    // tolerance now, though the pooled mean, held down by fast first tokens, does not; one late
    // stream among them is its normal tail and sheds nothing.
    [Fact]
    public void Ttft_SeveralLateStreamsAtOnce_ShedEvenUnderTheMean_OneLateStreamDoesNot()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 10, attempts: 20, ttft: 0.100);
        var pending = protection.Pending("enterprise")!;

        Assert.Empty(AwaitingAtJudgement(protection, pending, late: 1, fresh: 7));
        Assert.Equal(["free"], AwaitingAtJudgement(protection, pending, late: 3, fresh: 5));
        Assert.Equal(("enterprise", ShedReason.TtftKey, 2.5), (protection.State.Reason!.ProtectedClass, protection.State.Reason.Key, Math.Round(protection.State.Reason.Measured, 3)));
    }

    // A bucket of 20 first tokens at the baseline, then the judgement with `late` admitted streams
    // of enterprise 2.5x its baseline old and `fresh` ones 0.1x: the classes shed then.
    private string[] AwaitingAtJudgement(ClassProtection protection, PendingFirstTokens pending, int late, int fresh)
    {
        Seconds(protection, 1, attempts: 20, ttft: 0.100, advance: false);
        var slots = Enumerable.Range(0, late + fresh).Select(i => pending.Add(At(1 - (i < late ? 0.25 : 0.01)))).ToArray();
        _time.Advance(TimeSpan.FromSeconds(1));
        var shed = Shed(protection);
        foreach (var slot in slots)
        {
            pending.Remove(slot);
        }

        return shed;
    }

    // While a class is shed, one stream of a served class past 0.8 x its tolerance keeps it shed.
    [Fact]
    public void Recovery_OneLateStreamOfAServedClass_IsNotCalm()
    {
        var protection = OneSliceAtFourTimesTheBaseline();
        Assert.Equal(["free"], Shed(protection));
        var pending = protection.Pending("enterprise")!;
        for (var second = 0; second < 15; second++)
        {
            Seconds(protection, 1, attempts: 20, ttft: 0.100, advance: false);
            var slot = pending.Add(At(1 - 0.17)); // 1.7x, at each judgement
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(["free"], Shed(protection));
            pending.Remove(slot);
        }
    }

    // The first judgeable bucket is the fleet filling up: it weighs one bucket of the running mean
    // the next two windows' buckets make, then the baseline moves slowly.
    [Fact]
    public void Baseline_AWarmUpIsForgottenWithinTwoWindows_ThenItLearnsSlowly()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 3, attempts: 20, ttft: 0.060);
        Assert.Equal(0.060, protection.BaselineSeconds, 6);

        Seconds(protection, 20, attempts: 20, ttft: 0.100);
        Assert.InRange(protection.BaselineSeconds, 0.093, 0.096); // (3 x 0.060 + 18 x 0.100) / 21 = 0.0943, then 1%

        Seconds(protection, 10, attempts: 20, ttft: 0.150);
        Assert.InRange(protection.BaselineSeconds, 0.097, 0.102);
        Assert.Empty(Shed(protection));
    }

    // Blind is not calm: with too few first tokens to judge (1 a second against 20) while
    // enterprise's streams await theirs (each 0.1 s old, 1x, at every judgement), free stays shed;
    // the old rule counted those windows calm and brought it back a window after the shed. Once
    // nothing is awaited (an idle class), blind is calm again and free comes back.
    [Fact]
    public void Recovery_ASpanTooBlindToJudgeWhileFirstTokensAreAwaited_IsNotCalm()
    {
        var protection = new ClassProtection(_time, Model(minSamples: 20));
        Seconds(protection, 10, attempts: 20, ttft: 0.100);
        Seconds(protection, 1, attempts: 20, ttft: 0.400);
        Assert.Equal(["free"], Shed(protection));

        var pending = protection.Pending("enterprise")!;
        for (var second = 0; second < 30; second++)
        {
            var slot = pending.Add(At(-0.1));
            Seconds(protection, 1, attempts: 1, ttft: 0.100);
            pending.Remove(slot);
        }

        Assert.Equal(["free"], Shed(protection));
        Assert.True(double.IsNaN(protection.State.TtftRatio));

        Seconds(protection, 21, attempts: 1, ttft: 0.100);
        Assert.Empty(Shed(protection));
    }

    // The run-1 sequence (perf/RESULTS.md, "Issue 20 (degradation, no judgeable TTFT is not
    // calm)"): free shed, a calm phase of fast first tokens (free's contention gone), then a slowdown
    // where enterprise and premium get 2 and 1 first tokens a second at 1.5x, under the 0.8 x 2x of
    // calm, while their streams await theirs. The window still holds the fast phase's first tokens
    // and read calm: free came back a window after its shed. Judged now, the newest two slices hold
    // 6 first tokens of 20: blind while streams are awaited, so free stays shed; once enough first
    // tokens say the fleet is calm, it comes back a calm window later.
    [Fact]
    public void Recovery_AWindowOfOlderFastFirstTokens_DoesNotSpeakForAFewSlowNewOnes()
    {
        var protection = new ClassProtection(_time, Model(minSamples: 20));
        Mix(protection, 10, slowdown: 1, "enterprise", "premium", "free");
        Mix(protection, 1, slowdown: 5, "enterprise", "premium", "free");
        Assert.Equal(["free"], Shed(protection));

        Mix(protection, 5, slowdown: 0.2, "enterprise", "premium");
        var pending = protection.Pending("enterprise")!;
        for (var second = 0; second < 14; second++)
        {
            Seconds(protection, 1, attempts: 2, ttft: 0.030, className: "enterprise", advance: false);
            Seconds(protection, 1, attempts: 1, ttft: 0.060, className: "premium", advance: false);
            var slot = pending.Add(At(1 - 0.01)); // 0.5x enterprise's 20 ms baseline at the next judgement
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(["free"], Shed(protection));
            pending.Remove(slot);
        }

        Mix(protection, 11, slowdown: 1, "enterprise", "premium");
        Assert.Empty(Shed(protection));
    }

    // Half-open: free comes back at 1 in 4 of its new requests (the rest get the shed answer, to
    // retry when it widens), 1 in 2 two calm slices later, all two more later; premium, served
    // all along, is never refused.
    [Fact]
    public void Recovery_AReturningClassIsAdmittedOneInFour_ThenOneInTwo_ThenAll_WhileCalm()
    {
        var protection = ReturnedAfterOneSliceAtFourTimesTheBaseline();
        Assert.Equal((0.25, 1.0, 1.0), (protection.State.AdmitFraction("free"), protection.State.AdmitFraction("premium"), protection.State.AdmitFraction("enterprise")));
        Assert.Equal(2, Admitted(protection, "free", 8, expectRetryAfter: 2));
        Assert.Equal(8, Admitted(protection, "premium", 8));

        Seconds(protection, 2, attempts: 20, ttft: 0.100);
        Assert.Equal(0.5, protection.State.AdmitFraction("free"));
        Assert.Equal(4, Admitted(protection, "free", 8, expectRetryAfter: 2));

        Seconds(protection, 2, attempts: 20, ttft: 0.100);
        Assert.Equal(1.0, protection.State.AdmitFraction("free"));
        Assert.Equal(8, Admitted(protection, "free", 8));
    }

    // One slice not calm while free comes back (1.7x: past 0.8 x enterprise's 2x, not past 2x, so it
    // would shed nothing new): free is shut again at the next judgement, all of it.
    [Fact]
    public void Recovery_AReturningClassIsShutAgainAtOnce_WhenTheServedClassesAreNotCalm()
    {
        var protection = ReturnedAfterOneSliceAtFourTimesTheBaseline();
        Seconds(protection, 1, attempts: 20, ttft: 0.170);
        Assert.Equal(["free"], Shed(protection));
        Assert.Equal(0.0, protection.State.AdmitFraction("free"));
        Assert.Equal(0, Admitted(protection, "free", 8));
        Assert.Equal(("enterprise", ShedReason.TtftKey, 1.7), (protection.State.Reason!.ProtectedClass, protection.State.Reason.Key, Math.Round(protection.State.Reason.Measured, 3)));

        // Calm again: back half-open a calm window later, as at first.
        for (var second = 0; second < 12 && protection.State.Shed > 0; second++)
        {
            Seconds(protection, 1, attempts: 20, ttft: 0.100);
        }

        Assert.Equal(0.25, protection.State.AdmitFraction("free"));
    }

    // A class off the order, or protection off: no set to await in.
    [Fact]
    public void Pending_IsNullForAClassOutsideTheOrder_AndWithProtectionOff()
    {
        Assert.NotNull(new ClassProtection(_time, Model()).Pending("free"));
        Assert.Null(new ClassProtection(_time, Model()).Pending("batch"));
        Assert.Null(new ClassProtection(_time, Model(10, AdmissionHarness.Class("a"))).Pending("a"));
    }

    [Fact]
    public void Baseline_DoesNotLearnASlicePastTheStrictestTolerance_EvenTooFewToJudge()
    {
        var protection = new ClassProtection(_time, Model(minSamples: 10));
        Seconds(protection, 30, attempts: 20, ttft: 0.100); // the baseline's first window, and its warm-up
        var healthy = protection.BaselineSeconds;

        // Three slices at 3x with 4 first tokens each: the newest two slices' mean stays under 2x or
        // has too few first tokens to judge, the window's is under 1.2x; nothing shed, none of it learned.
        Seconds(protection, 3, attempts: 4, ttft: 0.300);
        Assert.Empty(Shed(protection));
        Assert.Equal(healthy, protection.BaselineSeconds);

        // 1.5x is within the tolerance: learned, slowly.
        Seconds(protection, 3, attempts: 20, ttft: 0.150);
        Assert.InRange(protection.BaselineSeconds, healthy * 1.001, healthy * 1.05);
    }

    [Fact]
    public void TooFewSamples_ShedNobody()
    {
        var protection = new ClassProtection(_time, Model(minSamples: 50));
        Seconds(protection, 10, attempts: 4, failed: 4); // 40 attempts in the window, all failed
        Assert.Empty(Shed(protection));

        Seconds(protection, 1, attempts: 20, failed: 20); // 56
        Assert.Equal(["free"], Shed(protection));
    }

    [Fact]
    public void ClientAbortsAndPushBacks_CountNeitherWay()
    {
        var protection = new ClassProtection(_time, Model(minSamples: 5));
        for (var second = 0; second < 10; second++)
        {
            for (var i = 0; i < 100; i++)
            {
                protection.Record("free", AttemptOutcome.ClientAborted, null);
                protection.Record("free", AttemptOutcome.PushedBack, null);
            }

            protection.Record("enterprise", AttemptOutcome.Succeeded, null);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(0.0, protection.State.ErrorRate);
        Assert.Empty(Shed(protection));
    }

    [Fact]
    public void RetryAfter_IsWhenTheClassMayComeBackFirst()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 10, attempts: 100, failed: 50);
        Seconds(protection, 10, attempts: 100, failed: 50);
        Assert.Equal(["free", "premium"], Shed(protection));

        // Not calm yet: premium (the last shed) needs a whole calm window from the next judgement
        // on, in 0.5 s, so 10.5 s; free a window after premium.
        _time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(protection.Sheds("premium", out var premium, out _));
        Assert.True(protection.Sheds("free", out var free, out _));
        Assert.Equal((11, 21), (premium, free));
    }

    [Fact]
    public void AClassWithoutTolerances_IsShedFirst_AndOffWithoutAnyTolerance()
    {
        var batch = AdmissionHarness.Class("batch", priority: 5);
        var protection = new ClassProtection(_time, Model(10, Enterprise, batch, Free));
        Seconds(protection, 1, attempts: 100, failed: 5);
        Assert.Equal(["batch"], Shed(protection));
        Seconds(protection, 1, attempts: 100, failed: 5);
        Assert.Equal(["batch", "free"], Shed(protection));

        var off = new ClassProtection(_time, Model(10, AdmissionHarness.Class("a"), batch));
        Seconds(off, 20, attempts: 100, failed: 100);
        Assert.False(off.State.Model.IsOn);
        Assert.False(off.Sheds("batch", out _, out _));
    }

    [Fact]
    public void AReloadThatChangesTheRules_StartsOver_AndOneThatKeepsThem_KeepsTheShed()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 1, attempts: 100, failed: 50);
        Assert.Equal(["free"], Shed(protection));

        protection.Apply(Model()); // equal rules, new arrays (as every reload builds them)
        Assert.Equal(["free"], Shed(protection));

        // Premium without tolerances is the loosest now: judged afresh, it is the one shed.
        protection.Apply(Model(10, Enterprise, Premium with { MaxErrorRate = 0, TtftTolerance = 0 }, Free));
        Assert.Equal(["premium"], Shed(protection));
    }

    // Each class against its own baseline: free's long prefills (100 ms) no longer set the bar for
    // enterprise's short ones (20 ms). With free and premium shed on a 5x slower fleet, enterprise's
    // first tokens (100 ms) are 5x its own baseline, not "calm" against a mix dominated by free's.
    [Fact]
    public void Ttft_OnlyTheStrictClassServedOnASlowerFleet_IsJudgedAgainstItsOwnBaseline_AndTheShedStay()
    {
        var protection = new ClassProtection(_time, Model());
        Mix(protection, 10, slowdown: 1, "enterprise", "premium", "free");
        Assert.Equal((0.020, 0.040, 0.100), (protection.ClassBaselineSeconds("enterprise"), protection.ClassBaselineSeconds("premium"), protection.ClassBaselineSeconds("free")));

        Mix(protection, 1, slowdown: 5, "enterprise", "premium", "free");
        Assert.Equal(["free"], Shed(protection));
        Mix(protection, 1, slowdown: 5, "enterprise", "premium");
        Assert.Equal(["free", "premium"], Shed(protection));

        // Three windows of enterprise alone, 5x slower: nothing comes back.
        Mix(protection, 30, slowdown: 5, "enterprise");
        Assert.Equal(["free", "premium"], Shed(protection));
        Assert.Equal(5.0, protection.State.TtftRatio, 3);

        // The fleet recovers: a calm window, and the last shed comes back first.
        Mix(protection, 20, slowdown: 1, "enterprise");
        Assert.Equal(["free"], Shed(protection));
    }

    // The ratio combines each served class's own ratio weighted by its first tokens, so the mix of
    // classes cancels out; a class without enough first tokens (or a baseline) adds nothing.
    [Fact]
    public void Ttft_TheRatioIsTheSampleWeightedMeanOfTheClassesOwnRatios()
    {
        var protection = new ClassProtection(_time, Model());
        for (var second = 0; second < 10; second++)
        {
            Seconds(protection, 1, attempts: 20, ttft: 0.020, className: "enterprise", advance: false);
            Seconds(protection, 1, attempts: 20, ttft: 0.100, className: "free");
        }

        // Enterprise at 1.5x its own, free at 0.5x its own, as many of each: the newest two slices
        // at 1.25x and 0.75x, the window at 1.05x and 0.95x; 1.0x either way. Premium's five slow
        // ones (no baseline, too few) add nothing; pooled with the rest they would read 1.18x.
        Seconds(protection, 1, attempts: 20, ttft: 0.030, className: "enterprise", advance: false);
        Seconds(protection, 1, attempts: 20, ttft: 0.050, className: "free", advance: false);
        Seconds(protection, 1, attempts: 5, ttft: 0.400, className: "premium");
        var state = protection.State;
        Assert.Equal(1.0, state.TtftRatio, 3);
        Assert.Equal(0.95, state.ClassRatios[0], 3); // free, the loosest, first
        Assert.True(double.IsNaN(state.ClassRatios[1]));
        Assert.Equal(1.25, state.ClassRatios[2], 3);
    }

    // A window at a 100 ms baseline, then one slice at 400 ms.
    private ClassProtection OneSliceAtFourTimesTheBaseline()
    {
        var protection = new ClassProtection(_time, Model());
        Seconds(protection, 10, attempts: 20, ttft: 0.100);
        Seconds(protection, 1, attempts: 20, ttft: 0.400);
        return protection;
    }

    // Free shed by one slice at 4x, then calm slices until it comes back (half-open).
    private ClassProtection ReturnedAfterOneSliceAtFourTimesTheBaseline()
    {
        var protection = OneSliceAtFourTimesTheBaseline();
        Assert.Equal(["free"], Shed(protection));
        for (var second = 0; second < 12 && protection.State.Shed > 0; second++)
        {
            Seconds(protection, 1, attempts: 20, ttft: 0.100);
        }

        Assert.Empty(Shed(protection));
        return protection;
    }

    // How many of `requests` new requests of the class are admitted now; each refused one gets the
    // shed answer with a reason, and (expectRetryAfter) that Retry-After.
    private static int Admitted(ClassProtection protection, string className, int requests, int expectRetryAfter = 0)
    {
        var admitted = 0;
        for (var i = 0; i < requests; i++)
        {
            if (!protection.Sheds(className, out var retryAfter, out var reason))
            {
                admitted++;
                continue;
            }

            Assert.NotNull(reason);
            Assert.True(expectRetryAfter == 0 || retryAfter == expectRetryAfter, $"retry-after {retryAfter}");
        }

        return admitted;
    }

    // The timestamp `seconds` from now (negative: before).
    private long At(double seconds) => _time.GetTimestamp() + (long)(seconds * _time.TimestampFrequency);

    private static string[] Shed(ClassProtection protection)
    {
        var state = protection.State;
        return [.. state.Model.Order.Take(state.Shed).Select(c => c.Name)];
    }

    // `seconds` buckets, each with `attempts` attempts (the first `failed` of them failed, the rest
    // streams whose first token took `ttft`), the clock moved to the next bucket after each.
    private void Seconds(ClassProtection protection, int seconds, int attempts, int failed = 0, double ttft = 0.05, string className = "enterprise", bool advance = true)
    {
        for (var second = 0; second < seconds; second++)
        {
            for (var i = 0; i < attempts; i++)
            {
                protection.Record(className, i < failed ? AttemptOutcome.UpstreamFailed : AttemptOutcome.Succeeded, i < failed ? null : TimeSpan.FromSeconds(ttft));
            }

            _time.Advance(advance ? TimeSpan.FromSeconds(1) : TimeSpan.Zero);
        }
    }

    // `seconds` buckets of the served classes' streams at their healthy first tokens x slowdown:
    // enterprise 10 a second at 20 ms, premium 10 at 40 ms, free 40 at 100 ms (its long prefills).
    private void Mix(ClassProtection protection, int seconds, double slowdown, params string[] served)
    {
        for (var second = 0; second < seconds; second++)
        {
            foreach (var name in served)
            {
                var (count, ttft) = name switch { "enterprise" => (10, 0.020), "premium" => (10, 0.040), _ => (40, 0.100) };
                Seconds(protection, 1, attempts: count, ttft: ttft * slowdown, className: name, advance: false);
            }

            _time.Advance(TimeSpan.FromSeconds(1));
        }
    }
}
