using System.Collections.Immutable;

namespace AotProxy.Configuration;

internal sealed record SchedulerModel(
    string Policy,
    int QueueCapacity,
    double InputWeight,
    double OutputWeight,
    double AgingFactor,
    ImmutableArray<double> BucketShares, // normalized: sums to 1; its length is bucket_count
    bool AdaptiveSlots = false,
    double AdaptiveMin = 0.5,         // (0, 1]: share of max_concurrency
    double AdaptiveMax = 1.5,         // [1, 10]: multiple of max_concurrency
    bool EnginePriority = false)      // the admitted priority goes upstream as vLLM's `priority`
{
    public int BucketCount => BucketShares.Length;

    // [scheduler] holdback: the utilization headroom the least important band leaves free, 0..0.5.
    public double Holdback { get; init; }

    // Per-class protection: its window, and the classes in shed order (ConfigValidator adds them).
    public ProtectionModel Protection { get; init; } = ProtectionModel.Off;

    // The configured classes' distinct priorities, most important first: holdback's bands.
    public ImmutableArray<int> Bands { get; init; } = [];

    // The fleet utilization under which a request of this class and priority is admitted: its
    // class's max_utilization, or the holdback curve's limit for its band if that is lower. The
    // band of rank r among n (0: most important) is admitted below 1 - holdback x r / (n - 1): with
    // holdback 0.2 and three bands, 1.0, 0.9, 0.8. A priority between two bands (a time window's
    // or a trusted x-priority) is held back like the next less important band.
    public double UtilizationLimit(ClassModel classModel, int priority)
    {
        if (Holdback <= 0 || Bands.Length < 2)
        {
            return classModel.MaxUtilization;
        }

        var rank = 0;
        foreach (var band in Bands)
        {
            rank += band < priority ? 1 : 0;
        }

        var limit = 1.0 - (Holdback * Math.Min(rank, Bands.Length - 1) / (Bands.Length - 1));
        return Math.Min(classModel.MaxUtilization, limit);
    }

    // bucket_shares = [] in the file: bucket i gets 0.75^i of bucket 0's share, normalized.
    public static ImmutableArray<double> GeometricShares(int count)
    {
        var shares = new double[count];
        var sum = 0.0;
        for (var i = 0; i < count; i++)
        {
            shares[i] = Math.Pow(0.75, i);
            sum += shares[i];
        }

        for (var i = 0; i < count; i++)
        {
            shares[i] /= sum;
        }

        return [.. shares];
    }
}
