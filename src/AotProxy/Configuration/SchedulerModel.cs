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
    bool EnginePriority = false,      // the admitted priority goes upstream as vLLM's `priority`
    double Lookahead = 0)             // [0, 1]: share of max_tokens x output_weight charged at the grant
{
    public int BucketCount => BucketShares.Length;

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
