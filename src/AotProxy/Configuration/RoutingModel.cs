namespace AotProxy.Configuration;

internal sealed record RoutingModel(string Strategy, TimeSpan MetricsInterval);
