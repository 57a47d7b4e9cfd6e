namespace AotProxy.Configuration.Validation;

// [health]: the active health check.
internal static class HealthRules
{
    public static HealthModel Validate(ValidationContext context, HealthConfig health)
    {
        context.Unknown("health", health.Unknown);
        var interval = context.Positive("health.interval", health.Interval);
        var timeout = context.Positive("health.timeout", health.Timeout);
        if (timeout > interval)
        {
            context.Error("health.timeout", $"must not be longer than health.interval ({health.Interval})");
        }

        if (!health.Path.StartsWith('/'))
        {
            context.Error("health.path", $"must start with '/' (got \"{health.Path}\")");
        }

        context.AtLeast("health.unhealthy_threshold", health.UnhealthyThreshold, 1);
        context.AtLeast("health.healthy_threshold", health.HealthyThreshold, 1);
        return new HealthModel(interval, timeout, health.Path, health.UnhealthyThreshold, health.HealthyThreshold);
    }
}
