using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [scheduler]: the admission policy, its queues and buckets, adaptive slots.
internal static class SchedulerRules
{
    // scheduler.queue_capacity's ceiling: 2^20 waiters per queue is far past any useful backlog.
    private const int BoundedQueueMax = 1 << 20;

    public static SchedulerModel Validate(ValidationContext context, SchedulerConfig scheduler)
    {
        context.Unknown("scheduler", scheduler.Unknown);
        if (!SchedulerPolicyNames.IsKnown(scheduler.Policy))
        {
            context.Error("scheduler.policy", $"unknown policy \"{scheduler.Policy}\"; use one of {string.Join(", ", SchedulerPolicyNames.All)}");
        }

        var capacity = scheduler.QueueCapacity;
        if (capacity is < 1 or > BoundedQueueMax)
        {
            context.Error("scheduler.queue_capacity", $"must be 1 to {BoundedQueueMax} (got {capacity})");
            capacity = 1024;
        }

        if (!(scheduler.AgingFactor > 0) || double.IsInfinity(scheduler.AgingFactor))
        {
            context.Error("scheduler.aging_factor", $"must be greater than 0 (got {ValidationContext.Number(scheduler.AgingFactor)})");
        }

        return new SchedulerModel(
            scheduler.Policy,
            capacity,
            context.NonNegative("scheduler.input_weight", scheduler.InputWeight),
            context.NonNegative("scheduler.output_weight", scheduler.OutputWeight),
            scheduler.AgingFactor > 0 ? scheduler.AgingFactor : 2.0,
            BucketShares(context, scheduler),
            scheduler.AdaptiveSlots,
            AdaptiveMin(context, scheduler.AdaptiveMin),
            AdaptiveMax(context, scheduler.AdaptiveMax),
            scheduler.EnginePriority)
        {
            Holdback = Holdback(context, scheduler.Holdback),
            Protection = new ProtectionModel(ProtectionWindow(context, scheduler.ProtectionWindow), ProtectionMinSamples(context, scheduler.ProtectionMinSamples), []),
        };
    }

    // 0.5: past half the fleet held back from the least important band, it is better refused by
    // its own max_utilization, which says so in its 503.
    private static double Holdback(ValidationContext context, double holdback)
    {
        if (holdback is >= 0 and <= 0.5)
        {
            return holdback;
        }

        context.Error("scheduler.holdback", $"must be 0 (off) to 0.5, the utilization headroom the least important band leaves free (got {ValidationContext.Number(holdback)})");
        return 0;
    }

    // 1 s to 1 h: its ten buckets are 100 ms to 6 min, each one step of the shed/un-shed decisions.
    // (Positive's own fallback after its error, 1 s, passes here.)
    private static TimeSpan ProtectionWindow(ValidationContext context, string text)
    {
        var window = context.Positive("scheduler.protection_window", text);
        if (window < TimeSpan.FromSeconds(1) || window > TimeSpan.FromHours(1))
        {
            context.Error("scheduler.protection_window", $"must be 1s to 1h (got \"{text}\")");
            return ProtectionModel.Off.Window;
        }

        return window;
    }

    private static int ProtectionMinSamples(ValidationContext context, int samples)
    {
        if (samples is >= 1 and <= 1_000_000)
        {
            return samples;
        }

        context.Error("scheduler.protection_min_samples", $"must be 1 to 1000000 (got {samples})");
        return ProtectionModel.Off.MinSamples;
    }

    private static double AdaptiveMin(ValidationContext context, double min)
    {
        if (min is > 0 and <= 1)
        {
            return min;
        }

        context.Error("scheduler.adaptive_min", $"must be greater than 0 and at most 1, a share of max_concurrency (got {ValidationContext.Number(min)})");
        return 0.5;
    }

    // 10: past ten times its configured concurrency a worker's max_concurrency is simply wrong,
    // and fixing the number beats letting the gateway find it one slot per scrape.
    private static double AdaptiveMax(ValidationContext context, double max)
    {
        if (max is >= 1 and <= 10)
        {
            return max;
        }

        context.Error("scheduler.adaptive_max", $"must be 1 to 10, a multiple of max_concurrency (got {ValidationContext.Number(max)})");
        return 1.5;
    }

    private static ImmutableArray<double> BucketShares(ValidationContext context, SchedulerConfig scheduler)
    {
        var count = scheduler.BucketCount;
        if (count is < 2 or > 100)
        {
            context.Error("scheduler.bucket_count", $"must be 2 to 100 (got {count})");
            count = 10;
        }

        var shares = scheduler.BucketShares;
        if (shares.Count == 0)
        {
            return SchedulerModel.GeometricShares(count);
        }

        if (shares.Count != count)
        {
            context.Error("scheduler.bucket_shares", $"lists {shares.Count} shares for {count} buckets (scheduler.bucket_count); list one per bucket, or none");
            return SchedulerModel.GeometricShares(count);
        }

        var sum = 0.0;
        for (var i = 0; i < shares.Count; i++)
        {
            sum += context.NonNegative($"scheduler.bucket_shares[{i}]", shares[i]);
        }

        if (!(sum > 0))
        {
            context.Error("scheduler.bucket_shares", "must not all be 0; they are relative shares of the slots");
            return SchedulerModel.GeometricShares(count);
        }

        return [.. shares.Select(share => Math.Max(0, share) / sum)];
    }
}
