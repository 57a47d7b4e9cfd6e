using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Admission;

// Per-class protection for one model pool, the QoS PRD's "universal circuit breaker": when the
// pool's error rate over the last protection_window passes a served class's max_error_rate, or its
// TTFT over the learned baseline passes the class's ttft_tolerance, new requests of the loosest
// class are shed (ProtectionModel's order); while it still passes a slice later, on what came
// after that shed, the next one too, never the strictest. A shed class comes back (the last shed
// first, one per window) once the window stayed below 0.8 x every served class's tolerances for a
// whole window, and a whole window after the last change: between 0.8x and 1x nothing moves.
//
// TTFT is judged so that a slowdown shows within a slice or two (a slice is a tenth of the window):
// the mean of the window, or of its newest RecentBuckets slices alone (a window's mean still holds
// nine healthy slices after the fleet slowed down, and passed 2x only ~9 s after a 5x slowdown,
// perf/RESULTS.md), and the waiters: a request of a served class still waiting for a slot longer
// than its class's tolerance x the baseline has missed that tolerance already, though its first
// token, which would say so, comes only once it is served. The error rate is judged on the window
// (a 1% rate means little over a few dozen requests, and a jump to 50% passes it within a slice).
//
// The hot path pays, with protection on, a clock read per admission and per request, and one
// judgement per bucket (a tenth of the window), made by whichever thread first sees the bucket
// change; nothing allocates but the state a judgement replaces. Off: one volatile read.
//
// It judges what clients see, one sample per forwarded request at its end (ForwardingStage), not
// each attempt: a failed attempt that a retry on another worker made good is no error (clients
// never saw it), while its time is in that request's first token.
// Errors: requests whose answer, after retries, was the fleet's failure (a worker's 5xx passed
// through, connect failures, timeouts and broken responses once retries were exhausted:
// AttemptOutcome.UpstreamFailed) over those that ended. Neither way: client aborts (and
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
    // The baseline's EWMA weight per bucket: a time constant of 100 buckets, ten windows (5 min at
    // 30 s), so a degradation that passes a tolerance within a window is judged against the TTFT
    // of before it, not learned as the new normal.
    private const double BaselineWeight = 0.01;

    // The newest slices judged on their own: 2 s of a 10 s window, at 30 requests/s some 60 first
    // tokens, enough for a mean to mean something against a 2x tolerance.
    public const int RecentBuckets = 2;

    private readonly TimeProvider _time;
    private readonly Func<string, long, long>? _oldestWait;
    private readonly FleetOutcomes _outcomes = new();
    private volatile ProtectionState _state;
    private long _judged;
    private double _baseline;

    // oldestWait(className, now): the ticks the class's longest waiter has waited for a slot (0: none).
    public ClassProtection(TimeProvider time, ProtectionModel model, Func<string, long, long>? oldestWait = null)
    {
        _time = time;
        _oldestWait = oldestWait;
        _state = ProtectionState.Calm(model, time.TimestampFrequency);
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

    // The learned baseline TTFT in seconds; 0 until a window had protection_min_samples first tokens.
    public double BaselineSeconds => Volatile.Read(ref _baseline);

    // A reload: rules that changed (window, minimum, classes' order or tolerances) start over with
    // nothing shed; the baseline is kept, the fleet did not change with the file.
    public void Apply(ProtectionModel model)
    {
        var current = _state.Model;
        if (model.Window == current.Window && model.MinSamples == current.MinSamples && SameOrder(model, current))
        {
            return;
        }

        _state = ProtectionState.Calm(model, _time.TimestampFrequency);
        Volatile.Write(ref _judged, 0);
    }

    // A request to the pool ended, retries included: outcome is its last attempt's; firstToken, a
    // streamed answer's, as its client waited for it.
    public void Record(AttemptOutcome outcome, TimeSpan? firstToken)
    {
        var state = _state;
        if (!state.Model.IsOn || outcome is not (AttemptOutcome.Succeeded or AttemptOutcome.UpstreamFailed))
        {
            return;
        }

        // Judged first: the first record of a bucket takes the slot of the bucket ten before it,
        // the oldest of the window the judgement reads.
        var now = _time.GetTimestamp();
        Judge(now);
        var failed = outcome == AttemptOutcome.UpstreamFailed;
        _outcomes.Record(now / state.BucketTicks, failed, !failed && firstToken is { } ttft ? ttft.Ticks / TimeSpan.TicksPerMicrosecond : -1);
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
        Interlocked.CompareExchange(ref _state, next, state); // a reload's Apply in between wins
    }

    // The judgement at the start of `bucket`, over the window that just ended and its newest slices.
    private ProtectionState Next(ProtectionState state, long bucket, long now)
    {
        var model = state.Model;
        var baseline = Volatile.Read(ref _baseline);
        var window = _outcomes.Sum(bucket - FleetOutcomes.Buckets, bucket - 1);
        var windowRatio = Ratio(window.MeanTtftSeconds(model.MinSamples), baseline);
        var errorRate = window.ErrorRate(model.MinSamples);

        // What came after the last change, at most the newest slices: the window still holds what
        // made the last shed, so a next one is judged only on what followed it.
        var recent = _outcomes.Sum(Math.Max(bucket - RecentBuckets, state.ChangedBucket), bucket - 1);
        var recentRatio = Ratio(recent.MeanTtftSeconds(model.MinSamples), baseline);
        var (shedErrors, shedRatio) = state.Shed == 0 ? (errorRate, MaxOf(windowRatio, recentRatio)) : (recent.ErrorRate(model.MinSamples), recentRatio);
        var next = state with { ErrorRate = errorRate, TtftRatio = MaxOf(windowRatio, recentRatio), CalmSince = 0 };
        if (Passed(model, state.Shed, shedErrors, shedRatio, 1.0, baseline, now) is { } reason)
        {
            next = state.Shed < model.Order.Length - 1
                ? next with { Shed = state.Shed + 1, ChangedBucket = bucket, Since = state.Since.Add(_time.GetUtcNow()), Reason = reason }
                : next;
        }
        else if (state.Shed > 0 && Passed(model, state.Shed, errorRate, next.TtftRatio, ProtectionModel.Hysteresis, baseline, now) is null)
        {
            next = next with { CalmSince = state.CalmSince > 0 ? state.CalmSince : bucket };
            if (bucket >= next.ReturnBucket(state.Shed - 1, bucket))
            {
                var shed = state.Shed - 1;
                next = next with { Shed = shed, ChangedBucket = bucket, CalmSince = bucket, Since = state.Since.RemoveAt(shed), Reason = shed == 0 ? null : state.Reason };
            }
        }

        if (state.Shed == 0 && next.Shed == 0)
        {
            // Healthy history only: never while shedding, nor a slice past the strictest tolerance,
            // so a degradation is not learned as normal while it is being detected.
            var newest = _outcomes.Sum(bucket - 1, bucket - 1).MeanTtftSeconds(1);
            Learn(window.MeanTtftSeconds(model.MinSamples), newest, model.Order[^1].TtftTolerance);
        }

        return next;
    }

    // The first served class, the strictest first, whose tolerance x factor was passed: by the
    // error rate, the TTFT ratio, or its own oldest waiter's wait over the baseline. NaN (too few
    // samples, no baseline) passes nothing.
    private ShedReason? Passed(ProtectionModel model, int shed, double errorRate, double ratio, double factor, double baseline, long now)
    {
        for (var i = model.Order.Length - 1; i >= shed; i--)
        {
            var classModel = model.Order[i];
            if (classModel.MaxErrorRate > 0 && errorRate > factor * classModel.MaxErrorRate)
            {
                return new ShedReason(classModel.Name, ShedReason.ErrorRateKey, classModel.MaxErrorRate, errorRate, model.Window);
            }

            var waited = _oldestWait is null ? double.NaN : Ratio(_oldestWait(classModel.Name, now) / (double)_time.TimestampFrequency, baseline);
            var measured = MaxOf(ratio, waited);
            if (classModel.TtftTolerance > 0 && measured > factor * classModel.TtftTolerance)
            {
                return new ShedReason(classModel.Name, ShedReason.TtftKey, classModel.TtftTolerance, measured, model.Window);
            }
        }

        return null;
    }

    // The first window with enough first tokens sets the baseline; then each bucket's mean within
    // the strictest tolerance (0: none) moves it.
    private void Learn(double windowTtft, double bucketTtft, double strictest)
    {
        var baseline = Volatile.Read(ref _baseline);
        if (baseline == 0)
        {
            Volatile.Write(ref _baseline, double.IsNaN(windowTtft) ? 0 : windowTtft);
        }
        else if (!double.IsNaN(bucketTtft) && (strictest == 0 || bucketTtft <= strictest * baseline))
        {
            Volatile.Write(ref _baseline, baseline + (BaselineWeight * (bucketTtft - baseline)));
        }
    }

    private static double Ratio(double ttft, double baseline) => baseline > 0 ? ttft / baseline : double.NaN;

    // The larger, NaN (nothing to judge) counting as neither (Math.Max returns NaN).
    private static double MaxOf(double a, double b) => double.IsNaN(a) ? b : double.IsNaN(b) ? a : Math.Max(a, b);

    private static bool SameOrder(ProtectionModel a, ProtectionModel b) =>
        a.Order.Length == b.Order.Length && a.Order.Zip(b.Order).All(p =>
            p.First.Name == p.Second.Name && p.First.MaxErrorRate == p.Second.MaxErrorRate && p.First.TtftTolerance == p.Second.TtftTolerance);
}
