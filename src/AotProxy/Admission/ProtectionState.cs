using System.Collections.Immutable;
using AotProxy.Configuration;

namespace AotProxy.Admission;

// Where one pool's protection stands, replaced whole at each judgement (once per bucket, a tenth
// of the window): the first Shed classes of the model's order are shed, since ChangedBucket (the
// last shed or un-shed) and, each, since Since[i]; CalmSince, the first bucket of the judgements
// in a row whose window was below 0.8 x the served classes' tolerances (0: the last was not); the
// window's error rate and TTFT ratio as last judged (NaN: too few samples, or no baseline yet),
// each class's own ratio (NaN: shed, too few, no baseline) and the served classes' baselines
// weighted by their first tokens (0: none yet). Classes holds each class's outcomes and baseline,
// in the model's order (so a judgement reads rules and outcomes of one snapshot).
internal sealed record ProtectionState(
    ProtectionModel Model,
    ImmutableArray<ClassOutcomes> Classes,
    long BucketTicks,
    int Shed,
    long ChangedBucket,
    long CalmSince,
    ImmutableArray<DateTimeOffset> Since,
    ShedReason? Reason,
    double ErrorRate,
    double TtftRatio,
    ImmutableArray<double> ClassRatios,
    double BaselineSeconds)
{
    // classes: the outcomes of the order's classes, in its order.
    public static ProtectionState Calm(ProtectionModel model, ImmutableArray<ClassOutcomes> classes, long timestampFrequency) =>
        new(model, classes, Math.Max(1, (long)(model.Window.TotalSeconds * timestampFrequency / FleetOutcomes.Buckets)), 0, 0, 0, [], null, double.NaN, double.NaN, [.. classes.Select(_ => double.NaN)], 0);

    // Half-open: the class at index Shed, the last to come back, is admitted at 1 in 2^ReturnShift
    // of its new requests (0: all), as of bucket ReturnStep (its return, or the last widening).
    public int ReturnShift { get; init; }

    public long ReturnStep { get; init; }

    // The share of the class's new requests admitted: 0 shed, a fraction while it comes back, 1.
    public double AdmitFraction(string className)
    {
        var index = IndexOf(className);
        return index < 0 || index > Shed ? 1 : index < Shed ? 0 : 1.0 / (1L << ReturnShift);
    }

    // The first bucket at which the shed class at `index` may come back: the last shed after a
    // whole window calm and a whole window since the last change (calm from the next judgement at
    // the soonest), each one before it a window later.
    public long ReturnBucket(int index, long bucket)
    {
        var calm = CalmSince > 0 ? CalmSince : bucket + 1;
        return Math.Max(ChangedBucket, calm) + (FleetOutcomes.Buckets * (Shed - index));
    }

    // The class's place among the shed, or -1.
    public int ShedIndex(string className)
    {
        var index = IndexOf(className);
        return index < Shed ? index : -1;
    }

    // The class's place in the model's order, or -1.
    public int IndexOf(string className)
    {
        var order = Model.Order;
        for (var i = 0; i < order.Length; i++)
        {
            if (string.Equals(order[i].Name, className, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}
