using System.Collections.Immutable;
using System.Runtime.InteropServices;
using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Admission;

// Per-class protection for one model pool, the QoS PRD's "universal circuit breaker": when the
// pool's error rate over the last protection_window passes a served class's max_error_rate, or its
// TTFT over the learned baseline passes the class's ttft_tolerance, new requests of the loosest
// class are shed (ProtectionModel's order); while it still passes a slice later, on what came
// after that shed, the next one too, never the strictest. A shed class comes back (the last shed
// first, one per window) once every judgement for a whole window, and a whole window after the
// last change, was calm: judged now (Calm), below 0.8 x every served class's tolerances; between
// 0.8x and 1x nothing moves.
//
// TTFT is judged per class, each served class's first tokens against its own class's baseline, and
// the classes' ratios combined as a mean weighted by their first tokens, so the mix served cancels
// out: one baseline for all classes was dominated by free's long prefills, and once free was shed
// enterprise's short first tokens on a 5x slower fleet read "calm" (0.2-1.2x) and let the shed
// classes back (perf/RESULTS.md, "Issue 20 (degradation, fast protection)"). A class with fewer
// than protection_min_samples first tokens in the window adds nothing to it; the newest slices pool
// the served classes' first tokens (each over its own class's baseline) and need that many in all.
// Each span is judged so that a slowdown shows within a slice or two (a slice is a tenth of the window):
// the mean of the window, or of its newest RecentBuckets slices alone (a window's mean still holds
// nine healthy slices after the fleet slowed down, and passed 2x only ~9 s after a 5x slowdown,
// perf/RESULTS.md), and the waiters: a request of a served class still waiting for a slot longer
// than its class's tolerance x its class's baseline has missed that tolerance already, though its first
// token, which would say so, comes only once it is served. An admitted stream of a served class
// still without its first token (PendingFirstTokens) is one at least its age late: the newest
// slices' mean counts it so, and several late at once pass the tolerance by the oldest (LateTail). And a span where the served classes' TTFT cannot be judged while
// their first tokens are awaited is no calm one. The error rate is judged on the window
// (a 1% rate means little over a few dozen requests, and a jump to 50% passes it within a slice).
//
// The hot path pays, with protection on, a clock read per admission and per request, and one
// judgement per bucket (a tenth of the window), made by whichever thread first sees the bucket
// change; nothing allocates but the state a judgement replaces. Off: one volatile read.
//
// Errors: failed upstream attempts (a worker's 5xx, connect failures, timeouts, resets before the
// head: AttemptOutcome.UpstreamFailed), each one, a retried one too, over those and the requests
// that ended (ForwardingStage). Counting only the clients' final outcomes hid a worker failing
// half its requests (retried on the others) from the error rule: the error rate read 0 through the
// errors phase while the retries ate capacity (perf/RESULTS.md, "Issue 20 (degradation, failed
// attempts counted)"). A retry's time is in that request's first token. Neither way: client aborts (and
// preemptions), a worker's "full" push-back (503/429), and the gateway's own refusals (limits'
// 429s, queue timeouts, sheds, pacing, no routable worker), which never reach a worker's verdict.
// TTFT: the first token of streamed answers as the client waited for it, from its arrival, its
// wait for a slot included: a fleet that slows down or loses capacity shows there first, and the
// strict class's SLA is on what its clients wait. A JSON answer's first byte comes after its last
// token, so it gives none.
//
// Each replica judges from its own attempts: behind a load balancer each sees a sample of the same
// fleet's outcomes, so the replicas reach the same verdict within about a bucket of each other.
internal sealed class ClassProtection
{
    // The baselines' EWMA weight per bucket: a time constant of 100 buckets, ten windows (5 min at
    // 30 s), so a degradation that passes a tolerance within a window is judged against the TTFT
    // of before it, not learned as the new normal.
    private const double BaselineWeight = 0.01;

    // A returning class is admitted at 1 in 2^ReturnShift of its new requests (1 in 4), then 1 in 2,
    // then all, a step every RecentBuckets calm slices; one slice not calm shuts it again. A shed
    // class came back all at once: one misjudged window let 33 free requests into a 5x slower
    // fleet, ~10 s of work, and enterprise's p95 went to 3.5 s (perf/RESULTS.md, "Issue 20
    // (degradation, no judgeable TTFT is not calm)").
    public const int ReturnShift = 2;

    // The buckets after the first judgeable one (at 20 first tokens, a second into the fleet's
    // ramp) whose running mean sets the baseline: two windows, ~5 ramp buckets of 20.
    private const int WarmUpBuckets = 2 * FleetOutcomes.Buckets;

    // The newest slices judged on their own: 2 s of a 10 s window, at 30 requests/s some 60 first
    // tokens, enough for a mean to mean something against a 2x tolerance.
    public const int RecentBuckets = 2;

    // The tail rule's fewest late streams (LateTail).
    private const int LateStreams = 3;

    private readonly TimeProvider _time;
    private readonly Func<string, long, long>? _oldestWait;
    private readonly Action? _shedMore;
    private volatile ProtectionState _state;
    private volatile ShedReason? _lastReason;
    private long _judged;
    private long _returning; // the returning class's new requests, counted: 1 in 2^ReturnShift passes

    // oldestWait(className, now): the ticks the class's longest waiter has waited for a slot (0: none).
    // shedMore: called when a judgement sheds one more class (its waiters are to be refused).
    public ClassProtection(TimeProvider time, ProtectionModel model, Func<string, long, long>? oldestWait = null, Action? shedMore = null)
    {
        _time = time;
        _oldestWait = oldestWait;
        _shedMore = shedMore;
        _state = ProtectionState.Calm(model, Outcomes(model, []), time.TimestampFrequency);
    }

    // The state as of now (judged first, if a bucket ended since).
    public ProtectionState State
    {
        get
        {
            Judge(_time.GetTimestamp());
            return _state;
        }
    }

    // The state as last judged: no clock read, no judgement (the dispatcher's view).
    public ProtectionState Judged => _state;

    // The served classes' learned baselines in seconds, weighted by their first tokens in the last
    // judged window; 0 until one was learned.
    public double BaselineSeconds => _state.BaselineSeconds;

    // The class's learned baseline in seconds; 0 until a window had protection_min_samples of its
    // first tokens (or it is not in the order).
    public double ClassBaselineSeconds(string className)
    {
        var state = _state;
        var index = state.IndexOf(className);
        return index < 0 ? 0 : state.Classes[index].BaselineSeconds;
    }

    // Where the class's admitted streams await their first token; null: off, or not in the order.
    public PendingFirstTokens? Pending(string className)
    {
        var state = _state;
        var index = state.Model.IsOn ? state.IndexOf(className) : -1;
        return index < 0 ? null : state.Classes[index].Pending;
    }

    // A reload: rules that changed (window, minimum, classes' order or tolerances) start over with
    // nothing shed; each class keeps its outcomes and baseline, the fleet did not change with the file.
    public void Apply(ProtectionModel model)
    {
        var current = _state;
        if (model.Window == current.Model.Window && model.MinSamples == current.Model.MinSamples && SameOrder(model, current.Model))
        {
            return;
        }

        _state = ProtectionState.Calm(model, Outcomes(model, current.Classes), _time.TimestampFrequency);
        Volatile.Write(ref _judged, 0);
    }

    // An attempt of the class's request to the pool: a failed one before its retry, or the last,
    // its firstToken a streamed answer's as its client waited for it.
    public void Record(string className, AttemptOutcome outcome, TimeSpan? firstToken)
    {
        var state = _state;
        if (!state.Model.IsOn || outcome is not (AttemptOutcome.Succeeded or AttemptOutcome.UpstreamFailed))
        {
            return;
        }

        var index = state.IndexOf(className);
        if (index < 0)
        {
            return; // a class a reload removed
        }

        // Judged first: the first record of a bucket takes the slot of the bucket ten before it,
        // the oldest of the window the judgement reads.
        var now = _time.GetTimestamp();
        Judge(now);
        var failed = outcome == AttemptOutcome.UpstreamFailed;
        state.Classes[index].Outcomes.Record(now / state.BucketTicks, failed, !failed && firstToken is { } ttft ? ttft.Ticks / TimeSpan.TicksPerMicrosecond : -1);
    }

    // True: a new request of this class is refused, to come back after retryAfterSeconds, the
    // earliest its class may be un-shed.
    public bool Sheds(string className, out int retryAfterSeconds, out ShedReason? reason)
    {
        retryAfterSeconds = 0;
        reason = null;
        if (!_state.Model.IsOn)
        {
            return false;
        }

        var now = _time.GetTimestamp();
        Judge(now);
        var state = _state;
        if (state.ReturnShift > 0 && state.IndexOf(className) == state.Shed)
        {
            // Half-open: a counter, no lock. The refused retry when it widens next.
            if ((Interlocked.Increment(ref _returning) & ((1L << state.ReturnShift) - 1)) == 0)
            {
                return false;
            }

            var widens = (state.ReturnStep + RecentBuckets) * state.BucketTicks;
            retryAfterSeconds = (int)Math.Clamp(Math.Ceiling((widens - now) / (double)_time.TimestampFrequency), 1, 3600);
            reason = state.Reason ?? _lastReason;
            return true;
        }

        var index = state.Shed == 0 ? -1 : state.ShedIndex(className);
        if (index < 0)
        {
            return false;
        }

        var back = state.ReturnBucket(index, now / state.BucketTicks) * state.BucketTicks;
        retryAfterSeconds = (int)Math.Clamp(Math.Ceiling((back - now) / (double)_time.TimestampFrequency), 1, 3600);
        reason = state.Reason;
        return true;
    }

    // For a waiter whose class was shed while it waited: Sheds' answer, or, if its class came back
    // since, the reason it was shed for, to retry in a second.
    public ShedReason? ShedAnswer(string className, out int retryAfterSeconds)
    {
        if (Sheds(className, out retryAfterSeconds, out var reason))
        {
            return reason;
        }

        retryAfterSeconds = 1;
        return _state.Reason ?? _lastReason;
    }

    private void Judge(long now)
    {
        var state = _state;
        if (!state.Model.IsOn)
        {
            return;
        }

        var bucket = now / state.BucketTicks;
        var judged = Volatile.Read(ref _judged);
        if (bucket <= judged || Interlocked.CompareExchange(ref _judged, bucket, judged) != judged)
        {
            return;
        }

        var next = Next(state, bucket, now);
        if (Interlocked.CompareExchange(ref _state, next, state) == state && next.Shed > state.Shed) // a reload's Apply in between wins
        {
            _lastReason = next.Reason;
            _shedMore?.Invoke();
        }
    }

    // The judgement at the start of `bucket`, over the window that just ended and its newest slices.
    private ProtectionState Next(ProtectionState state, long bucket, long now)
    {
        var model = state.Model;
        var classes = state.Classes;

        // What came after the last change, at most the newest slices: the window still holds what
        // made the last shed, so a next one is judged only on what followed it.
        var recentFirst = Math.Max(bucket - RecentBuckets, state.ChangedBucket);
        var (window, recent) = (default(FleetSample), default(FleetSample));
        var (windowTtft, recentTtft) = (default(WeightedMean), default(WeightedMean));
        var ratios = new double[classes.Length];
        for (var i = 0; i < classes.Length; i++)
        {
            var outcomes = classes[i].Outcomes;
            var classWindow = outcomes.Sum(bucket - FleetOutcomes.Buckets, bucket - 1);
            var classRecent = outcomes.Sum(recentFirst, bucket - 1);
            window += classWindow;
            recent += classRecent;
            ratios[i] = double.NaN;
            if (i >= state.Shed)
            {
                // Only the served classes' first tokens: a shed class's last ones say nothing of now.
                // The newest slices pooled: each class's first tokens over its own baseline, however
                // few, protection_min_samples counted over all served classes together, so a
                // low-rate strict class (enterprise, ~7 in two slices) does not blind them; and its
                // admitted streams still without a first token, each by its age, a first token at
                // least that late. One stream in a class's normal tail is no degradation (compared
                // alone with 2x a mean baseline, enterprise's shed free in the healthy phase at the
                // full point: 11% of the time one was past it); the fleet holding many is.
                var baseline = classes[i].BaselineSeconds;
                var windowRatio = windowTtft.Add(Ratio(classWindow.MeanTtftSeconds(model.MinSamples), baseline), classWindow.FirstTokens);
                recentTtft.Add(Ratio(classRecent.MeanTtftSeconds(1), baseline), classRecent.FirstTokens);
                var ages = classes[i].Pending.Ages(now, out var awaiting);
                recentTtft.Add(Ratio(awaiting == 0 ? double.NaN : ages / (double)_time.TimestampFrequency / awaiting, baseline), awaiting);
                ratios[i] = MaxOf(windowRatio, Ratio(classRecent.MeanTtftSeconds(model.MinSamples), baseline));
            }
        }

        var errorRate = window.ErrorRate(model.MinSamples);
        var recentRatio = recentTtft.Weight >= model.MinSamples ? recentTtft.Mean : double.NaN;
        var ratio = MaxOf(windowTtft.Mean, recentRatio);
        var (shedErrors, shedRatio) = state.Shed == 0 ? (errorRate, ratio) : (recent.ErrorRate(model.MinSamples), recentRatio);
        var next = state with { ErrorRate = errorRate, TtftRatio = ratio, ClassRatios = ImmutableCollectionsMarshal.AsImmutableArray(ratios), CalmSince = 0 };
        var calm = false;
        if (Passed(state, state.Shed, shedErrors, shedRatio, 1.0, now, eachStream: false) is { } reason)
        {
            next = state.Shed < model.Order.Length - 1 ? ShedOneMore(next, bucket, reason) : next;
        }
        else if ((state.Shed > 0 || state.ReturnShift > 0) && (calm = Calm(state, errorRate, recentRatio, now)))
        {
            next = next with { CalmSince = state.CalmSince > 0 ? state.CalmSince : bucket };
            if (state.ReturnShift > 0)
            {
                // Half-open: wider every RecentBuckets calm slices, the returning class's own first
                // tokens among those judged.
                next = bucket >= state.ReturnStep + RecentBuckets ? next with { ReturnShift = state.ReturnShift - 1, ReturnStep = bucket } : next;
            }
            else if (bucket >= next.ReturnBucket(state.Shed - 1, bucket))
            {
                var shed = state.Shed - 1;
                next = next with { Shed = shed, ChangedBucket = bucket, CalmSince = bucket, Since = state.Since.RemoveAt(shed), Reason = shed == 0 ? null : state.Reason, ReturnShift = ReturnShift, ReturnStep = bucket };
            }
        }

        if (!calm && state.ReturnShift > 0 && next.Shed == state.Shed)
        {
            // Half-open and not calm: the returning class is shut again at once, before it refills the fleet.
            next = ShedOneMore(next, bucket, Passed(state, state.Shed, errorRate, recentRatio, ProtectionModel.Hysteresis, now, eachStream: true) ?? _lastReason ?? state.Reason!);
        }

        if (state.Shed == 0 && next.Shed == 0 && state.ReturnShift == 0 && next.ReturnShift == 0)
        {
            // Healthy history only: never while shedding, nor a slice past the strictest tolerance,
            // so a degradation is not learned as normal while it is being detected.
            foreach (var outcomes in classes)
            {
                var newest = outcomes.Outcomes.Sum(bucket - 1, bucket - 1).MeanTtftSeconds(1);
                Learn(outcomes, outcomes.Outcomes.Sum(bucket - FleetOutcomes.Buckets, bucket - 1).MeanTtftSeconds(model.MinSamples), newest, model.Order[^1].TtftTolerance);
            }
        }

        return next with { BaselineSeconds = Baseline(classes, next.Shed, bucket, model.MinSamples) };
    }

    private ProtectionState ShedOneMore(ProtectionState next, long bucket, ShedReason reason) =>
        next with { Shed = next.Shed + 1, ChangedBucket = bucket, CalmSince = 0, Since = next.Since.Add(_time.GetUtcNow()), Reason = reason, ReturnShift = 0 };

    // The first served class, the strictest first, whose tolerance x factor was passed: by the
    // error rate, the TTFT ratio, or its own longest-awaited first token (OldestAwaited: its oldest
    // waiter, and with eachStream its oldest admitted stream too) over its class's baseline. NaN
    // (too few samples, no baseline) passes nothing. Calm needs eachStream, a shed does not: the
    // streams' ages are in the ratio, and one stream's is no degradation, but no stream of a served
    // class may be late when a shed class comes back.
    private ShedReason? Passed(ProtectionState state, int shed, double errorRate, double ratio, double factor, long now, bool eachStream)
    {
        var model = state.Model;
        for (var i = model.Order.Length - 1; i >= shed; i--)
        {
            var classModel = model.Order[i];
            if (classModel.MaxErrorRate > 0 && errorRate > factor * classModel.MaxErrorRate)
            {
                return new ShedReason(classModel.Name, ShedReason.ErrorRateKey, classModel.MaxErrorRate, errorRate, model.Window);
            }

            var streams = eachStream || LateTail(state, i, classModel.TtftTolerance, now);
            var measured = MaxOf(ratio, Ratio(OldestAwaited(state, i, now, streams) / (double)_time.TimestampFrequency, state.Classes[i].BaselineSeconds));
            if (classModel.TtftTolerance > 0 && measured > factor * classModel.TtftTolerance)
            {
                return new ShedReason(classModel.Name, ShedReason.TtftKey, classModel.TtftTolerance, measured, model.Window);
            }
        }

        return null;
    }

    // Whether several of the class's admitted streams are late at once: at least LateStreams, and a
    // quarter of those awaiting a first token, older than its tolerance x baseline. One is its normal
    // tail (shed free in the healthy phase); the pooled mean, ~80% free's first tokens, passed only
    // 7-8.7 s into the errors phase at the full point (perf/RESULTS.md, deg20e).
    private bool LateTail(ProtectionState state, int index, double tolerance, long now)
    {
        var baseline = state.Classes[index].BaselineSeconds;
        if (tolerance <= 0 || baseline <= 0)
        {
            return false;
        }

        var late = state.Classes[index].Pending.ArrivedBefore(now - (long)(tolerance * baseline * _time.TimestampFrequency), out var awaiting);
        return late >= LateStreams && late * 4 >= awaiting;
    }

    // Ticks the class's longest-awaited first token has been awaited: its oldest waiter's wait for
    // a slot, or (streams) its oldest admitted stream's age without a first token, from its arrival (0: none).
    private long OldestAwaited(ProtectionState state, int index, long now, bool streams)
    {
        var waited = _oldestWait?.Invoke(state.Model.Order[index].Name, now) ?? 0;
        var arrived = streams ? state.Classes[index].Pending.Oldest() : 0;
        return Math.Max(waited, arrived == 0 ? 0 : now - arrived);
    }

    // Whether the judgement counts as calm, judged now: the served classes' newest first tokens
    // pooled (recentRatio; the window may still hold a calmer past: free came back 4.1 s into a 5x
    // slowdown on a window of the errors phase's fast first tokens, perf/RESULTS.md "Issue 20
    // (degradation, no judgeable TTFT is not calm)"), the window's error rate, and every served
    // class's longest-awaited first token, each below 0.8 x every served class's tolerances. Too
    // few newest first tokens while some are awaited (in flight or waiting) is blind, not calm:
    // first tokens stop coming exactly when the fleet holds them. Too few with nothing awaited is idle.
    private bool Calm(ProtectionState state, double errorRate, double recentRatio, long now)
    {
        if (double.IsNaN(recentRatio))
        {
            for (var i = state.Shed; i < state.Classes.Length; i++)
            {
                if (state.Model.Order[i].TtftTolerance > 0 && state.Classes[i].BaselineSeconds > 0 && OldestAwaited(state, i, now, streams: true) > 0)
                {
                    return false;
                }
            }
        }

        return Passed(state, state.Shed, errorRate, recentRatio, ProtectionModel.Hysteresis, now, eachStream: true) is null;
    }

    // The first window with enough of the class's first tokens sets its baseline; then each
    // bucket's mean within the strictest tolerance (0: none) of it moves it: for WarmUpBuckets as a
    // running mean in which the first weighs one bucket, then slowly. The first is the fleet filling
    // up: at the full point enterprise's was 94 ms against a 165 ms healthy mean, 1.75x of its 2x
    // tolerance for the rest of the healthy phase (perf/RESULTS.md).
    private static void Learn(ClassOutcomes outcomes, double windowTtft, double bucketTtft, double strictest)
    {
        var baseline = outcomes.BaselineSeconds;
        if (baseline == 0)
        {
            (outcomes.BaselineSeconds, outcomes.Learned) = (double.IsNaN(windowTtft) ? 0 : windowTtft, 0);
        }
        else if (!double.IsNaN(bucketTtft) && (strictest == 0 || bucketTtft <= strictest * baseline))
        {
            var weight = outcomes.Learned < WarmUpBuckets ? 1.0 / (outcomes.Learned + 2) : BaselineWeight;
            (outcomes.BaselineSeconds, outcomes.Learned) = (baseline + (weight * (bucketTtft - baseline)), outcomes.Learned + 1);
        }
    }

    // The served classes' baselines, weighted by their first tokens in the window (for the report).
    private static double Baseline(ImmutableArray<ClassOutcomes> classes, int shed, long bucket, int minSamples)
    {
        var baselines = default(WeightedMean);
        for (var i = shed; i < classes.Length; i++)
        {
            var window = classes[i].Outcomes.Sum(bucket - FleetOutcomes.Buckets, bucket - 1);
            baselines.Add(classes[i].BaselineSeconds is > 0 and var baseline ? baseline : double.NaN, window.FirstTokens >= minSamples ? window.FirstTokens : 0);
        }

        return double.IsNaN(baselines.Mean) ? 0 : baselines.Mean;
    }

    // The order's classes' outcomes: a class's from before the reload, where it had them.
    private static ImmutableArray<ClassOutcomes> Outcomes(ProtectionModel model, ImmutableArray<ClassOutcomes> before) =>
        [.. model.Order.Select(c => before.FirstOrDefault(o => o.Name == c.Name) ?? new ClassOutcomes(c.Name))];

    private static double Ratio(double ttft, double baseline) => baseline > 0 ? ttft / baseline : double.NaN;

    // The larger, NaN (nothing to judge) counting as neither (Math.Max returns NaN).
    private static double MaxOf(double a, double b) => double.IsNaN(a) ? b : double.IsNaN(b) ? a : Math.Max(a, b);

    private static bool SameOrder(ProtectionModel a, ProtectionModel b) =>
        a.Order.Length == b.Order.Length && a.Order.Zip(b.Order).All(p =>
            p.First.Name == p.Second.Name && p.First.MaxErrorRate == p.Second.MaxErrorRate && p.First.TtftTolerance == p.Second.TtftTolerance);
}
