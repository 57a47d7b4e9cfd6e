using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [[classes]]: service tiers; without any, one implicit class (ClassModel.Implicit).
internal static class ClassRules
{
    public static ImmutableArray<ClassModel> Validate(ValidationContext context, IReadOnlyList<ClassConfig> classes, int bucketCount)
    {
        if (classes.Count == 0)
        {
            return [ClassModel.Implicit(bucketCount)];
        }

        var result = ImmutableArray.CreateBuilder<ClassModel>(classes.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < classes.Count; i++)
        {
            var cls = classes[i];
            var at = $"classes[{i}]";
            context.Unknown(at, cls.Unknown);
            var unique = context.Name($"{at}.name", cls.Name, "class", names, i, "classes");
            if (cls.Priority is < 0 or > ClassModel.MaxPriority)
            {
                context.Error($"{at}.priority", $"must be 0 (most important) to {ClassModel.MaxPriority} (got {cls.Priority})");
            }

            context.AtLeast($"{at}.weight", cls.Weight, 1);
            var wait = context.Positive($"{at}.max_queue_wait", cls.MaxQueueWait);
            if (!(cls.MaxUtilization > 0 && cls.MaxUtilization <= 1))
            {
                context.Error($"{at}.max_utilization", $"must be above 0 and at most 1.0 (got {ValidationContext.Number(cls.MaxUtilization)})");
            }

            var (first, last) = ClassBuckets(context, at, cls, bucketCount);
            TimeSpan? sla = cls.TtftSla.Length == 0 ? null : context.Positive($"{at}.ttft_sla", cls.TtftSla);
            if (cls.Mode is not (ClassModes.Strict or ClassModes.AtLeast))
            {
                context.Error($"{at}.mode", $"unknown mode \"{cls.Mode}\"; use \"{ClassModes.AtLeast}\" or \"{ClassModes.Strict}\"");
            }

            // A duplicate is reported above and left out here, so the snapshot stays buildable
            // (ClassesByName would throw) while the remaining rules are still checked.
            if (unique)
            {
                result.Add(new ClassModel(cls.Name, cls.Priority, cls.Weight, wait, cls.MaxUtilization, first, last, cls.Mode == ClassModes.Strict)
                {
                    TtftSla = sla,
                    MaxErrorRate = MaxErrorRate(context, at, cls.MaxErrorRate),
                    TtftTolerance = TtftTolerance(context, at, cls.TtftTolerance),
                    CacheSalt = cls.CacheSalt,
                    SharedResponseCache = cls.SharedResponseCache,
                    Preemptible = cls.Preemptible,
                });
            }
        }

        return result.ToImmutable();
    }

    // Below 1: at 1 every failure of the fleet is tolerated, and the class protects nothing.
    private static double MaxErrorRate(ValidationContext context, string at, double rate)
    {
        if (rate is >= 0 and < 1)
        {
            return rate;
        }

        context.Error($"{at}.max_error_rate", $"must be 0 (none) or a fleet error rate below 1, e.g. 0.01 (got {ValidationContext.Number(rate)})");
        return 0;
    }

    // At least 1.25: a class is un-shed below 0.8 x the tolerance it protects (hysteresis), and
    // below 1.25 that is under the baseline itself, which a healthy fleet is only half the time.
    private static double TtftTolerance(ValidationContext context, string at, double tolerance)
    {
        if (tolerance == 0 || (tolerance >= ProtectionModel.MinTtftTolerance && tolerance <= 1000))
        {
            return tolerance;
        }

        context.Error($"{at}.ttft_tolerance", $"must be 0 (none) or {ProtectionModel.MinTtftTolerance} to 1000, a multiple of the learned baseline TTFT, e.g. 2.0 (got {ValidationContext.Number(tolerance)})");
        return 0;
    }

    private static (int First, int Last) ClassBuckets(ValidationContext context, string at, ClassConfig cls, int bucketCount)
    {
        if (cls.Buckets.Count == 0)
        {
            return ClassModel.BucketsOf(Math.Clamp(cls.Priority, 0, ClassModel.MaxPriority), bucketCount);
        }

        if (cls.Buckets.Count != 2 || cls.Buckets[0] < 0 || cls.Buckets[0] > cls.Buckets[1] || cls.Buckets[1] >= bucketCount)
        {
            context.Error($"{at}.buckets", $"must be [first, last] with 0 <= first <= last < {bucketCount} (scheduler.bucket_count), got [{string.Join(", ", cls.Buckets)}]");
            return ClassModel.BucketsOf(Math.Clamp(cls.Priority, 0, ClassModel.MaxPriority), bucketCount);
        }

        return (cls.Buckets[0], cls.Buckets[1]);
    }
}
