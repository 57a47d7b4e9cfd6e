namespace AotProxy.Configuration;

internal sealed record HealthModel(TimeSpan Interval, TimeSpan Timeout, string Path, int UnhealthyThreshold, int HealthyThreshold);
