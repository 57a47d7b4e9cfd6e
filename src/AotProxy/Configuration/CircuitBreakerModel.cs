namespace AotProxy.Configuration;

internal sealed record CircuitBreakerModel(int FailureThreshold, int SuccessThreshold, TimeSpan OpenTimeout, int HalfOpenMaxRequests, TimeSpan SlowCallThreshold);
