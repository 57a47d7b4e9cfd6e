using AotProxy.Configuration;
using AotProxy.Routing;

namespace AotProxy.Admission;

// Per-class protection for one model pool, the QoS PRD's "universal circuit breaker": when the
// pool's error rate over the last protection_window passes a served class's max_error_rate, or its
// mean TTFT over the learned baseline passes the class's ttft_tolerance, new requests of the
// loosest class are shed (ProtectionModel's order); while it still passes a window later, the next
// one too, never the strictest. A shed class comes back (the last shed first, one per window) once
// the window stayed below 0.8 x every served class's tolerances for a whole window, and a whole
// window after the last change: between 0.8x and 1x nothing moves.
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

    private readonly TimeProvider _time;
    private readonly FleetOutcomes _outcomes = new();
    private volatile ProtectionState _state;
    private long _judged;
    private double _baseline;

    public ClassProtection(TimeProvider time, ProtectionModel model)
    {
        _time = time;
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

        var next = Next(state, bucket);
        Interlocked.CompareExchange(ref _state, next, state); // a reload's Apply in between wins
    }

    // The judgement at the start of `bucket`, over the whole window that just ended.
    private ProtectionState Next(ProtectionState state, long bucket)
    {
        var model = state.Model;
        var window = _outcomes.Sum(bucket - FleetOutcomes.Buckets, bucket - 1);
        var errorRate = window.ErrorRate(model.MinSamples);
        var ttft = window.MeanTtftSeconds(model.MinSamples);
        if (state.Shed == 0)
        {
            // Frozen while shedding: a degraded fleet's TTFT learned as its baseline would make the
            // degradation look normal, un-shed the classes while it lasts, and shed them again.
            Learn(ttft, _outcomes.Sum(bucket - 1, bucket - 1).MeanTtftSeconds(1));
        }

        var baseline = Volatile.Read(ref _baseline);
        var ratio = baseline > 0 ? ttft / baseline : double.NaN;
        var next = state with { ErrorRate = errorRate, TtftRatio = ratio, CalmSince = 0 };
        if (Passed(model, state.Shed, errorRate, ratio, 1.0, model.Window) is { } reason)
        {
            // The first shed at once; each next one after a whole window that still passes.
            var settled = bucket - state.ChangedBucket >= FleetOutcomes.Buckets;
            return state.Shed < model.Order.Length - 1 && (state.Shed == 0 || settled)
                ? next with { Shed = state.Shed + 1, ChangedBucket = bucket, Since = state.Since.Add(_time.GetUtcNow()), Reason = reason }
                : next;
        }

        if (state.Shed == 0 || Passed(model, state.Shed, errorRate, ratio, ProtectionModel.Hysteresis, model.Window) is not null)
        {
            return next;
        }

        next = next with { CalmSince = state.CalmSince > 0 ? state.CalmSince : bucket };
        if (bucket < next.ReturnBucket(state.Shed - 1, bucket))
        {
            return next;
        }

        var shed = state.Shed - 1;
        return next with { Shed = shed, ChangedBucket = bucket, CalmSince = bucket, Since = state.Since.RemoveAt(shed), Reason = shed == 0 ? null : state.Reason };
    }

    // The first served class, the strictest first, whose tolerance x factor the window passed.
    // NaN (too few samples, no baseline) passes nothing.
    private static ShedReason? Passed(ProtectionModel model, int shed, double errorRate, double ratio, double factor, TimeSpan window)
    {
        for (var i = model.Order.Length - 1; i >= shed; i--)
        {
            var classModel = model.Order[i];
            if (classModel.MaxErrorRate > 0 && errorRate > factor * classModel.MaxErrorRate)
            {
                return new ShedReason(classModel.Name, ShedReason.ErrorRateKey, classModel.MaxErrorRate, errorRate, window);
            }

            if (classModel.TtftTolerance > 0 && ratio > factor * classModel.TtftTolerance)
            {
                return new ShedReason(classModel.Name, ShedReason.TtftKey, classModel.TtftTolerance, ratio, window);
            }
        }

        return null;
    }

    // The first window with enough first tokens sets the baseline; then each bucket's mean moves it.
    private void Learn(double windowTtft, double bucketTtft)
    {
        var baseline = Volatile.Read(ref _baseline);
        if (baseline == 0)
        {
            Volatile.Write(ref _baseline, double.IsNaN(windowTtft) ? 0 : windowTtft);
        }
        else if (!double.IsNaN(bucketTtft))
        {
            Volatile.Write(ref _baseline, baseline + (BaselineWeight * (bucketTtft - baseline)));
        }
    }

    private static bool SameOrder(ProtectionModel a, ProtectionModel b) =>
        a.Order.Length == b.Order.Length && a.Order.Zip(b.Order).All(p =>
            p.First.Name == p.Second.Name && p.First.MaxErrorRate == p.Second.MaxErrorRate && p.First.TtftTolerance == p.Second.TtftTolerance);
}
