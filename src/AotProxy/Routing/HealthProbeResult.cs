namespace AotProxy.Routing;

// StatusCode is 0 when no response came.
internal readonly record struct HealthProbeResult(HealthOutcome Outcome, int StatusCode)
{
    public bool IsHealthy => Outcome == HealthOutcome.Healthy;
}
