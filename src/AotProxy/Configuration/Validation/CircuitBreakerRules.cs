namespace AotProxy.Configuration.Validation;

// [circuit_breaker]: each worker's breaker.
internal static class CircuitBreakerRules
{
    public static CircuitBreakerModel Validate(ValidationContext context, CircuitBreakerConfig breaker)
    {
        context.Unknown("circuit_breaker", breaker.Unknown);
        context.AtLeast("circuit_breaker.failure_threshold", breaker.FailureThreshold, 1);
        context.AtLeast("circuit_breaker.success_threshold", breaker.SuccessThreshold, 1);
        context.AtLeast("circuit_breaker.half_open_max_requests", breaker.HalfOpenMaxRequests, 1);
        return new CircuitBreakerModel(
            breaker.FailureThreshold,
            breaker.SuccessThreshold,
            context.Positive("circuit_breaker.open_timeout", breaker.OpenTimeout),
            breaker.HalfOpenMaxRequests,
            context.Positive("circuit_breaker.slow_call_threshold", breaker.SlowCallThreshold));
    }
}
