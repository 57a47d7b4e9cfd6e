using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [routing]: the strategy, the metrics scrape and the scores the strategies weigh.
internal static class RoutingRules
{
    public static RoutingModel Validate(ValidationContext context, RoutingConfig routing)
    {
        context.Unknown("routing", routing.Unknown);
        if (!RoutingStrategyNames.IsKnown(routing.Strategy))
        {
            context.Error("routing.strategy", $"unknown strategy \"{routing.Strategy}\"; use one of {string.Join(", ", RoutingStrategyNames.All)}");
        }

        var interval = context.Positive("routing.metrics_interval", routing.MetricsInterval);
        var timeout = interval * 0.8;
        if (routing.MetricsTimeout.Length > 0)
        {
            timeout = context.Positive("routing.metrics_timeout", routing.MetricsTimeout);
            if (timeout >= interval)
            {
                context.Error("routing.metrics_timeout", $"must be shorter than routing.metrics_interval ({routing.MetricsInterval}), or scrapes overlap");
            }
        }

        var weights = new ScoreWeights(
            context.NonNegative("routing.weight_waiting", routing.WeightWaiting),
            context.NonNegative("routing.weight_running", routing.WeightRunning),
            context.NonNegative("routing.weight_kv", routing.WeightKv),
            context.NonNegative("routing.weight_latency", routing.WeightLatency),
            context.NonNegative("routing.weight_error", routing.WeightError));
        var ratio = context.NonNegative("routing.affinity_max_ratio", routing.AffinityMaxRatio);
        if (ratio < 1)
        {
            context.Error("routing.affinity_max_ratio", $"must be at least 1 (got {ValidationContext.Number(routing.AffinityMaxRatio)}); below 1 the affine worker would lose to a busier one");
        }

        context.AtLeast("routing.virtual_nodes", routing.VirtualNodes, 1);
        if (routing.VirtualNodes > 10_000)
        {
            context.Error("routing.virtual_nodes", $"must be at most 10000 (got {routing.VirtualNodes}); 150 already spreads keys within a few percent");
        }

        var epsilon = context.NonNegative("routing.epsilon", routing.Epsilon);
        if (epsilon > 1)
        {
            context.Error("routing.epsilon", $"is a probability: 0..1 (got {ValidationContext.Number(routing.Epsilon)})");
        }

        var learningRate = routing.LearningRate;
        if (!(learningRate > 0 && learningRate <= 1))
        {
            context.Error("routing.learning_rate", $"must be in (0, 1] (got {ValidationContext.Number(learningRate)})");
        }

        return new RoutingModel(
            routing.Strategy,
            interval,
            timeout,
            weights,
            context.NonNegative("routing.prefix_bonus", routing.PrefixBonus),
            context.Positive("routing.prefix_ttl", routing.PrefixTtl),
            context.NonNegative("routing.affinity_max_gap", routing.AffinityMaxGap),
            ratio,
            routing.HashHeader.Trim(),
            routing.VirtualNodes,
            context.NonNegative("routing.hash_load_factor", routing.HashLoadFactor),
            epsilon,
            learningRate,
            routing.Warmup,
            routing.SessionAffinity)
        {
            AutoPreference = AutoPreference(context, routing.AutoPreference),
        };
    }

    // Names of served models (not checked against the workers: one may be down at a reload); no "auto", no repeats.
    private static ImmutableArray<string> AutoPreference(ValidationContext context, IReadOnlyList<string> models)
    {
        for (var i = 0; i < models.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(models[i]) || models[i] == ModelCatalog.Auto)
            {
                context.Error(new KeyPath("routing", "auto_preference", i), "must name a served model");
            }
            else if (models.Take(i).Contains(models[i], StringComparer.Ordinal))
            {
                context.Error(new KeyPath("routing", "auto_preference", i), $"\"{models[i]}\" is listed twice");
            }
        }

        return models.Count == 0 ? ImmutableArray<string>.Empty : [.. models]; // Empty: the model record compares equal to its default
    }
}
